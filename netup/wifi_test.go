package netup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const testPSK = "correct horse battery"

type fakeRadio struct {
	visible []string
	offload bool
}

func (r *fakeRadio) Visible(context.Context, string) ([]string, error) { return r.visible, nil }
func (r *fakeRadio) Associated(string) (string, string, bool, error) {
	return "home", "02:00:00:00:01:00", true, nil
}
func (r *fakeRadio) ConnectPSK(_, _ string, psk []byte) error {
	if r.offload {
		return nil
	}
	return ErrNoOffload
}

// fakeSupplicant reads its config like wpa_supplicant and proves, before
// it says anything, that netup removed the file once it had been read.
type fakeSupplicant struct {
	t       *testing.T
	mu      sync.Mutex
	configs [][]byte
	modes   []fs.FileMode
	started chan chan string // one output channel per start, for the test
}

type fakeProc struct{ lines chan string }

func (p *fakeProc) Lines() <-chan string { return p.lines }
func (p *fakeProc) Wait() error          { return errors.New("exit status 1") }

func (s *fakeSupplicant) Start(ctx context.Context, iface, path string) (SupplicantProcess, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, err
	}
	watch := os.NewFile(uintptr(fd), "inotify")
	defer watch.Close()
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_DELETE_SELF); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	// Await the deletion; netup's own bound is 10 s of its (fake,
	// unadvanced) clock, so only the read can have triggered it.
	must(s.t, watch.SetReadDeadline(time.Now().Add(testBound)))
	if _, err := watch.Read(make([]byte, 256)); err != nil {
		return nil, fmt.Errorf("config not removed after it was read: %w", err)
	}
	s.mu.Lock()
	s.configs = append(s.configs, b)
	s.modes = append(s.modes, fi.Mode().Perm())
	s.mu.Unlock()
	// Like a killed child, the process ends when ctx does.
	fromTest, lines := make(chan string), make(chan string)
	go func() {
		defer close(lines)
		for {
			select {
			case l, ok := <-fromTest:
				if !ok {
					return
				}
				select {
				case lines <- l:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	s.started <- fromTest
	return &fakeProc{lines: lines}, nil
}

func startWifiNet(t *testing.T, radio *fakeRadio, sup *fakeSupplicant) *env {
	t.Helper()
	e := &env{clk: newFakeClock(), links: newFakeLinks(), dhcp: newFakeDHCP(), log: newStatusLog(), done: make(chan error, 1)}
	e.runDir = t.TempDir()
	n, err := New(Config{SysRoot: fakeSysfs(t, []string{"wlan0"}, nil), RunDir: e.runDir, Links: e.links, DHCP: e.dhcp,
		Wifi: &WifiConfig{SSID: "home", PSK: []byte(testPSK)}, Radio: radio, Supplicant: sup, Clock: e.clk})
	must(t, err)
	e.net = n
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() { e.done <- n.Run(ctx, e.log.report) }()
	t.Cleanup(func() {
		cancel()
		<-e.done
	})
	return e
}

func TestWifiSupplicantPath(t *testing.T) {
	sup := &fakeSupplicant{t: t, started: make(chan chan string, 4)}
	e := startWifiNet(t, &fakeRadio{visible: []string{"neighbour"}}, sup)
	e.log.awaitLine(t, "WiFi: network home not found.")
	out := recvStart(t, sup)
	sup.mu.Lock()
	conf, mode := sup.configs[0], sup.modes[0]
	sup.mu.Unlock()
	if mode != 0o600 || !bytes.Contains(conf, []byte(`psk="`+testPSK+`"`)) || bytes.Contains(conf, []byte("ctrl_interface")) {
		t.Fatalf("config mode %v:\n%s", mode, conf)
	}

	// Wrong key: said so, no DHCP.
	out <- `wlan0: CTRL-EVENT-SSID-TEMP-DISABLED id=0 ssid="home" auth_failures=1 duration=10 reason=WRONG_KEY`
	e.log.awaitLine(t, "WiFi: wrong password for home.")
	// The disconnect of the next failed attempt keeps the reason. Lines are
	// handled in order: once two more were taken, the disconnect was handled.
	out <- "wlan0: CTRL-EVENT-DISCONNECTED bssid=02:00:00:00:01:00 reason=15"
	out <- "wlan0: SME: Trying to authenticate with 02:00:00:00:01:00"
	out <- "wlan0: Trying to associate with 02:00:00:00:01:00"
	if w := e.net.Snapshot().Wifi; w == nil || w.State != wifiWrongKey || w.Associated {
		t.Fatalf("after a disconnect the WiFi evidence is %+v, want still %s", w, wifiWrongKey)
	}
	// The supplicant dies: restarted after backoff.
	restartAt := e.clk.Now().Add(retryBackoff(1))
	close(out)
	e.log.awaitLine(t, "WiFi: supplicant stopped; restarting.")
	e.clk.awaitTimer(t, restartAt)
	e.clk.advanceTo(restartAt)
	out = recvStart(t, sup)

	e.links.plug("wlan0", true)
	select {
	case c := <-e.dhcp.calls:
		t.Fatalf("DHCP before association: %+v", c)
	default:
	}
	out <- "wlan0: CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:01:00 completed [id=0 id_str=]"
	e.log.awaitLine(t, "WiFi: connected to home.")
	e.dhcp.next(t, "wlan0").reply <- dhcpReply{lease: mkLease(e.clk, "wlan0", "192.168.7.20/24", "192.168.7.1")}
	e.log.awaitLine(t, "Network: 192.168.7.20 on wlan0.")

	ev := e.net.Snapshot()
	if ev.Wifi == nil || !ev.Wifi.Associated || ev.Wifi.SSID != "home" || ev.Wifi.BSSID != "02:00:00:00:01:00" {
		t.Fatalf("wifi evidence %+v", ev.Wifi)
	}
	assertNoPSK(t, e)
}

func TestWifiOffload(t *testing.T) {
	sup := &fakeSupplicant{t: t, started: make(chan chan string, 1)}
	e := startWifiNet(t, &fakeRadio{visible: []string{"home"}, offload: true}, sup)
	e.log.awaitLine(t, "WiFi: connecting to home.")
	e.links.plug("wlan0", true)
	e.dhcp.next(t, "wlan0").reply <- dhcpReply{lease: mkLease(e.clk, "wlan0", "192.168.7.20/24", "192.168.7.1")}
	e.log.awaitLine(t, "Network: 192.168.7.20 on wlan0.")
	select {
	case <-sup.started:
		t.Fatal("supplicant started although the driver offloads the handshake")
	default:
	}
	for _, st := range e.log.all {
		if st.Line == lineWifiNotFound("home") {
			t.Fatal("visible network reported as not found")
		}
	}
	assertNoPSK(t, e)
}

func TestWifiNoInterface(t *testing.T) {
	e := &env{clk: newFakeClock(), links: newFakeLinks(), dhcp: newFakeDHCP(), log: newStatusLog()}
	n, err := New(Config{SysRoot: fakeSysfs(t, []string{"eth0"}, nil), RunDir: t.TempDir(), Links: e.links, DHCP: e.dhcp,
		Wifi: &WifiConfig{SSID: "home", PSK: []byte(testPSK)}, Radio: &fakeRadio{}, Clock: e.clk})
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx, e.log.report) }()
	defer func() { cancel(); <-done }()
	e.clk.awaitTimer(t, e.clk.Now().Add(defaultWifiWait))
	e.clk.advanceTo(e.clk.Now().Add(defaultWifiWait))
	e.log.awaitLine(t, "WiFi: no wireless interface found.")
}

func recvStart(t *testing.T, s *fakeSupplicant) chan string {
	t.Helper()
	select {
	case out := <-s.started:
		return out
	case <-time.After(testBound):
		t.Fatal("supplicant not started")
		return nil
	}
}

// assertNoPSK looks for the passphrase in every report, the evidence and
// every file left in the run dir.
func assertNoPSK(t *testing.T, e *env) {
	t.Helper()
	e.log.mu.Lock()
	for _, st := range e.log.all {
		if strings.Contains(fmt.Sprintf("%+v %#v", st, st), testPSK) {
			t.Errorf("PSK in status %q", st.Line)
		}
	}
	e.log.mu.Unlock()
	js, err := json.Marshal(e.net.Snapshot())
	must(t, err)
	if bytes.Contains(js, []byte(testPSK)) {
		t.Error("PSK in evidence")
	}
	if s := fmt.Sprintf("%v %+v %#v", e.net.cfg.Wifi, *e.net.cfg.Wifi, e.net.cfg.Wifi); strings.Contains(s, testPSK) {
		t.Errorf("WifiConfig prints its PSK: %s", s)
	}
	must(t, filepath.WalkDir(e.runDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil && bytes.Contains(b, []byte(testPSK)) {
			t.Errorf("PSK left in %s", path)
		}
		return err
	}))
}

func TestParseSupplicantLine(t *testing.T) {
	cases := map[string]supEvent{
		"wlan0: CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:01:00 completed [id=0 id_str=]":             supConnected,
		"wlan0: CTRL-EVENT-DISCONNECTED bssid=02:00:00:00:01:00 reason=3 locally_generated=1":                supDisconnected,
		`wlan0: CTRL-EVENT-SSID-TEMP-DISABLED id=0 ssid="home" auth_failures=1 duration=10 reason=WRONG_KEY`: supWrongKey,
		"wlan0: WPA: 4-Way Handshake failed - pre-shared key may be incorrect":                               supWrongKey,
		"wlan0: CTRL-EVENT-NETWORK-NOT-FOUND":                                                                supNotFound,
		"Successfully initialized wpa_supplicant":                                                            supNone,
		"": supNone,
	}
	for line, want := range cases {
		if got := parseSupplicantLine(line); got != want {
			t.Errorf("%q: got %d, want %d", line, got, want)
		}
	}
}

func FuzzSupplicantLine(f *testing.F) {
	f.Add("wlan0: CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:01:00 completed")
	f.Add("reason=WRONG_KEY")
	f.Fuzz(func(t *testing.T, line string) {
		if ev := parseSupplicantLine(line); ev < supNone || ev > supNotFound {
			t.Fatalf("event %d out of range", ev)
		}
		out := make(chan string, 64)
		readLines(strings.NewReader(line), out)
		close(out)
		for l := range out {
			if len(l) > maxSupplicantLine || strings.Contains(l, "\n") {
				t.Fatalf("line of %d bytes", len(l))
			}
		}
	})
}

func TestReadLinesTruncates(t *testing.T) {
	long := strings.Repeat("x", 3*maxSupplicantLine)
	out := make(chan string, 8)
	readLines(strings.NewReader("a\n"+long+"\nCTRL-EVENT-CONNECTED\n"), out)
	close(out)
	var got []string
	for l := range out {
		got = append(got, l)
	}
	if len(got) != 3 || got[0] != "a" || len(got[1]) != maxSupplicantLine || got[2] != "CTRL-EVENT-CONNECTED" {
		t.Fatalf("lines %d: %q", len(got), got[0])
	}
}

// TestSupplicantConfigAcceptedByWpaSupplicant has the real wpa_supplicant
// parse the config netup writes: no interface exists, so it stops at the
// driver, but only after reading (and complaining about) the config.
func TestSupplicantConfigAcceptedByWpaSupplicant(t *testing.T) {
	bin, err := exec.LookPath("wpa_supplicant")
	if err != nil {
		bin = "/usr/sbin/wpa_supplicant"
	}
	run := func(w *WifiConfig) string {
		path := filepath.Join(t.TempDir(), "wpa.conf")
		must(t, os.WriteFile(path, supplicantConfig(w), 0o600))
		ctx, cancel := context.WithTimeout(context.Background(), testBound)
		defer cancel()
		out, _ := exec.CommandContext(ctx, bin, "-i", "inert-none0", "-c", path, "-D", "nl80211").CombinedOutput()
		return string(out)
	}
	good := run(&WifiConfig{SSID: "Jo's net_1-2.x", PSK: []byte("a b'c#d;e&f{g}h=i")})
	if strings.Contains(good, "Line ") || strings.Contains(good, "Failed to read or parse configuration") {
		t.Fatalf("wpa_supplicant refused the config:\n%s", good)
	}
	// The check can fail: a passphrase wpa_supplicant refuses is noticed.
	bad := run(&WifiConfig{SSID: "home", PSK: []byte("short")})
	if !strings.Contains(bad, "Failed to read or parse configuration") {
		t.Fatalf("wpa_supplicant accepted a 5-character passphrase:\n%s", bad)
	}
}

func TestWifiConfigValidate(t *testing.T) {
	cases := map[string]WifiConfig{
		"empty ssid":     {SSID: "", PSK: []byte("12345678")},
		"long ssid":      {SSID: strings.Repeat("s", 33), PSK: []byte("12345678")},
		"quote in ssid":  {SSID: `a"b`, PSK: []byte("12345678")},
		"short psk":      {SSID: "home", PSK: []byte("1234567")},
		"long psk":       {SSID: "home", PSK: bytes.Repeat([]byte("p"), 64)},
		"quote in psk":   {SSID: "home", PSK: []byte(`12345678"`)},
		"newline in psk": {SSID: "home", PSK: []byte("1234\n5678")},
		"dollar in psk":  {SSID: "home", PSK: []byte("1234$5678")},
	}
	for name, w := range cases {
		_, err := New(Config{SysRoot: "/sys", RunDir: "/run", Links: newFakeLinks(), DHCP: newFakeDHCP(), Wifi: &w})
		if !errors.Is(err, ErrWifi) {
			t.Errorf("%s: got %v, want ErrWifi", name, err)
		} else if strings.Contains(err.Error(), string(w.PSK)) && len(w.PSK) > 0 {
			t.Errorf("%s: error quotes the PSK", name)
		}
	}
}
