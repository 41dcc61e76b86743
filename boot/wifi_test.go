package boot

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

const testPSK = "correct horse battery"

func TestParseWifi(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       string
		wantSSID string
		wantErr  error
	}{
		{name: "two lines", in: "Home Net\n" + testPSK + "\n", wantSSID: "Home Net"},
		{name: "no trailing newline", in: "Home Net\n" + testPSK, wantSSID: "Home Net"},
		{name: "CRLF", in: "Home Net\r\n" + testPSK + "\r\n", wantSSID: "Home Net"},
		{name: "empty third line", in: "Home Net\n" + testPSK + "\n\n", wantSSID: "Home Net"},
		{name: "all SSID characters", in: "Az09_ .'-\n" + testPSK + "\n", wantSSID: "Az09_ .'-"},
		{name: "too short", in: "a\nb\n", wantErr: ErrWifiSize},
		{name: "too long", in: "ssid\n" + strings.Repeat("p", 300), wantErr: ErrWifiSize},
		{name: "NUL", in: "Home Net\n" + testPSK + "\x00\n", wantErr: ErrWifiNUL},
		{name: "one line", in: "Home Net and more", wantErr: ErrWifiLines},
		{name: "third line", in: "Home Net\n" + testPSK + "\nextra\n", wantErr: ErrWifiLines},
		{name: "empty SSID", in: "\n" + testPSK + "\n", wantErr: ErrWifiSSID},
		{name: "SSID too long", in: strings.Repeat("s", 33) + "\n" + testPSK + "\n", wantErr: ErrWifiSSID},
		{name: "SSID bad char", in: "Home;Net\n" + testPSK + "\n", wantErr: ErrWifiSSID},
		{name: "SSID non-ASCII", in: "Café\n" + testPSK + "\n", wantErr: ErrWifiSSID},
		{name: "PSK too short", in: "Home Net\nshort77\n", wantErr: ErrWifiPSK},
		{name: "PSK too long", in: "Home Net\n" + strings.Repeat("p", 64) + "\n", wantErr: ErrWifiPSK},
		{name: "PSK quote", in: "Home Net\npass\"word\n", wantErr: ErrWifiPSK},
		{name: "PSK backslash", in: "Home Net\npass\\word\n", wantErr: ErrWifiPSK},
		{name: "PSK dollar", in: "Home Net\npa$$word\n", wantErr: ErrWifiPSK},
		{name: "PSK backtick", in: "Home Net\npass`word\n", wantErr: ErrWifiPSK},
		{name: "PSK tab", in: "Home Net\npass\tword\n", wantErr: ErrWifiPSK},
		{name: "PSK DEL", in: "Home Net\npass\x7fword\n", wantErr: ErrWifiPSK},
		{name: "PSK non-ASCII", in: "Home Net\npässwörd1\n", wantErr: ErrWifiPSK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseWifi([]byte(tc.in))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				lines := strings.Split(strings.ReplaceAll(tc.in, "\r", ""), "\n")
				if len(lines) > 1 && len(lines[1]) >= 4 && strings.Contains(err.Error(), lines[1]) {
					t.Fatalf("error reveals the PSK line: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.SSID != tc.wantSSID || string(c.PSK) != testPSK {
				t.Fatalf("got SSID %q PSK %q", c.SSID, c.PSK)
			}
		})
	}
}

func TestWifiCredsNeverShowPSK(t *testing.T) {
	c, err := ParseWifi([]byte("Home Net\n" + testPSK + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(c)
	jsp, _ := json.Marshal(&c)
	jsn, _ := json.Marshal(struct{ W WifiCreds }{c})
	for _, s := range []string{
		fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s %q", c, c, c, c, c),
		fmt.Sprintf("%v %+v %#v", &c, &c, &c), string(js), string(jsp), string(jsn),
		fmt.Sprintf("%v", []WifiCreds{c}), fmt.Sprintf("%+v", map[string]WifiCreds{"w": c}),
	} {
		if strings.Contains(s, testPSK) || strings.Contains(s, "horse") {
			t.Fatalf("PSK visible in %q", s)
		}
		if !strings.Contains(s, "Home Net") {
			t.Fatalf("SSID missing from %q", s)
		}
	}
	psk := c.PSK
	c.Wipe()
	if c.PSK != nil || strings.Trim(string(psk), "\x00") != "" {
		t.Fatal("Wipe left the PSK in memory")
	}
}

var (
	ssidRE = regexp.MustCompile(`^[A-Za-z0-9_ .'-]{1,32}$`)
	pskRE  = regexp.MustCompile("^[ !#%&'()*+,\\-./0-9:;<=>?@A-Z\\[\\]^_a-z{|}~]{8,63}$")
)

func FuzzParseWifi(f *testing.F) {
	f.Add([]byte("Home Net\n" + testPSK + "\n"))
	f.Add([]byte("a\r\nbbbbbbbb\r\n\r\n"))
	f.Add([]byte("Home\npa$$word\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseWifi(b)
		if err != nil {
			lines := strings.Split(strings.ReplaceAll(string(b), "\r", ""), "\n")
			if len(lines) > 1 && len(lines[1]) >= 8 && strings.Contains(err.Error(), lines[1]) {
				t.Fatalf("error reveals the PSK line: %v", err)
			}
			return
		}
		// A second reading of the rules: regexes over the \r-free lines.
		clean := strings.ReplaceAll(string(b), "\r", "")
		lines := strings.Split(clean, "\n")
		if len(b) < 10 || len(b) > 256 || strings.ContainsRune(string(b), 0) {
			t.Fatalf("accepted %d bytes / NUL", len(b))
		}
		if !ssidRE.MatchString(c.SSID) || !pskRE.Match(c.PSK) {
			t.Fatalf("accepted SSID %q / PSK outside the rules", c.SSID)
		}
		if lines[0] != c.SSID || lines[1] != string(c.PSK) || strings.TrimLeft(strings.Join(lines[2:], ""), "") != "" {
			t.Fatalf("accepted lines that are not SSID, PSK, empties")
		}
	})
}
