package display

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestParsePrimaryIP(t *testing.T) {
	cases := []struct {
		in   string
		want string // "" means none
	}{
		{"iface=eth0\nip=10.0.2.15\ngw=10.0.2.2\ndns=10.0.2.3\n", "10.0.2.15"},
		{"iface=wlan0\nip=192.168.1.7/24\n", "192.168.1.7"},
		{"ip=2001:db8::5\n", "2001:db8::5"},
		{"ip=::ffff:10.0.0.9\n", "10.0.0.9"},
		{"  ip=10.1.1.1  \r\n", "10.1.1.1"},
		{"iface=eth0\ngw=10.0.2.2\n", ""},
		{"ip=\n", ""},
		{"ip=0.0.0.0\n", ""},
		{"ip=127.0.0.1\n", ""},
		{"ip=fe80::1%eth0\n", ""},
		{"ip=10.0.2.15; rm -rf /\n", ""},
		{"ip=999.1.1.1\n", ""},
		{"\x00\xff", ""},
	}
	for _, c := range cases {
		got, ok := parsePrimaryIP([]byte(c.in))
		if c.want == "" {
			if ok {
				t.Errorf("%q: got %v, want none", c.in, got)
			}
			continue
		}
		if !ok || got != mustAddr(t, c.want) {
			t.Errorf("%q: got %v %v, want %s", c.in, got, ok, c.want)
		}
	}
}

func TestPrimaryIPFile(t *testing.T) {
	dir := t.TempDir()
	if _, ok := primaryIP(dir); ok {
		t.Fatal("absent file gave an address")
	}
	if _, ok := primaryIP(""); ok {
		t.Fatal("empty run dir gave an address")
	}
	if err := os.WriteFile(filepath.Join(dir, primaryNetFile), []byte("ip=10.0.2.15\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if a, ok := primaryIP(dir); !ok || a.String() != "10.0.2.15" {
		t.Fatalf("got %v %v", a, ok)
	}
}

func TestServiceURL(t *testing.T) {
	if got := serviceURL(mustAddr(t, "10.0.2.15"), 8734); got != "http://10.0.2.15:8734/" {
		t.Errorf("v4: %s", got)
	}
	if got := serviceURL(mustAddr(t, "2001:db8::5"), 8734); got != "http://[2001:db8::5]:8734/" {
		t.Errorf("v6: %s", got)
	}
	for _, c := range []struct {
		port int
		path string
		want string
	}{{8734, "/~measurement@1.0/info", "http://127.0.0.1:8734/~measurement@1.0/info"}, {80, "healthz", "http://127.0.0.1:80/healthz"}, {0, "/x", ""}, {70000, "/x", ""}, {-1, "/", ""}} {
		if got := healthURL(c.port, c.path); got != c.want {
			t.Errorf("healthURL(%d, %q) = %q, want %q", c.port, c.path, got, c.want)
		}
	}
}

func FuzzPrimaryNet(f *testing.F) {
	f.Add([]byte("iface=eth0\nip=10.0.2.15\ngw=10.0.2.2\n"))
	f.Add([]byte("ip=2001:db8::1/64\n"))
	f.Add([]byte("ip=" + strings.Repeat("9", 5000)))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, ok := parsePrimaryIP(data)
		if !ok {
			return
		}
		if !a.IsValid() || a.IsUnspecified() || a.IsLoopback() || a.Zone() != "" {
			t.Fatalf("accepted %v", a)
		}
		u := serviceURL(a, 8734)
		if strings.ContainsAny(u, " \n\r\t%") || !strings.HasPrefix(u, "http://") {
			t.Fatalf("bad URL %q", u)
		}
	})
}

func TestHealthProbe(t *testing.T) {
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte("fine"))
		case "/error":
			w.WriteHeader(http.StatusInternalServerError)
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/hang":
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	_, portText, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portText)
	p := newHealthProbe(200 * time.Millisecond)
	for path, want := range map[string]bool{"/ok": true, "/error": false, "/redirect": false, "/hang": false, "/missing": false} {
		if got := p.healthy(context.Background(), healthURL(port, path)); got != want {
			t.Errorf("%s: healthy = %v, want %v", path, got, want)
		}
	}
	// Nothing listening at all.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().(*net.TCPAddr).Port
	l.Close()
	if p.healthy(context.Background(), healthURL(closed, "/")) {
		t.Error("closed port counted as healthy")
	}
}
