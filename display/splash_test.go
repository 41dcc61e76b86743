package display

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// memScreen is a Framebuffer over plain memory, as OpenScreen would return.
type memScreen struct {
	*Framebuffer
	mem []byte
	geo Geometry
}

func newMemScreen(t *testing.T, w, h int, f PixelFormat) *memScreen {
	t.Helper()
	geo := Geometry{Width: w, Height: h, Stride: (w + 8) * f.BytesPerPixel(), XOffset: 4, Format: f}
	mem := make([]byte, geo.Stride*h)
	fb, err := NewFramebuffer(mem, geo)
	if err != nil {
		t.Fatal(err)
	}
	return &memScreen{Framebuffer: fb, mem: mem, geo: geo}
}

type splashRig struct {
	t       *testing.T
	screen  *memScreen
	states  *io.PipeWriter
	drawn   chan Scene
	done    chan error
	console atomic.Int32
	runDir  string
}

func startSplash(t *testing.T) *splashRig {
	t.Helper()
	dev := t.TempDir()
	if err := os.WriteFile(filepath.Join(dev, "fb0"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := &splashRig{t: t, screen: newMemScreen(t, 640, 480, RGB565), drawn: make(chan Scene, 16), done: make(chan error, 1), runDir: t.TempDir()}
	pr, pw := io.Pipe()
	r.states = pw
	opts := SplashOptions{
		DevRoot: dev, SysRoot: t.TempDir(), FramebufferWait: time.Second,
		ProbeInterval: 20 * time.Millisecond, ProbeTimeout: 500 * time.Millisecond,
		OpenScreen: func(string) (Screen, error) { return r.screen, nil },
		ConsoleOff: func() error { r.console.Add(1); return nil },
		Drawn:      func(s Scene) { r.drawn <- s },
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { r.done <- RunSplash(ctx, pr, opts) }()
	t.Cleanup(func() {
		cancel()
		pw.Close()
		<-r.done
	})
	return r
}

func (r *splashRig) send(st State) {
	r.t.Helper()
	line, err := json.Marshal(st)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.states.Write(append(line, '\n')); err != nil {
		r.t.Fatal(err)
	}
}

// await returns the first drawn scene that satisfies ok.
func (r *splashRig) await(what string, ok func(Scene) bool) Scene {
	r.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case s := <-r.drawn:
			if ok(s) {
				return s
			}
		case <-timeout:
			r.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// healthServer answers the health path with whatever status is stored.
func healthServer(t *testing.T, path string) (port int, status, probes *atomic.Int32) {
	t.Helper()
	status, probes = &atomic.Int32{}, &atomic.Int32{}
	status.Store(http.StatusServiceUnavailable)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != path {
			http.NotFound(w, req)
			return
		}
		probes.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(srv.Close)
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ = strconv.Atoi(p)
	return port, status, probes
}

func TestSplashLifecycle(t *testing.T) {
	const path = "/~measurement@1.0/info"
	port, status, probes := healthServer(t, path)
	r := startSplash(t)
	// Before the service runs there is nothing to probe, even if
	// something answers on the port.
	status.Store(http.StatusOK)
	booting := State{Word: "DHCP", Status: "Asking for an address.", RunDir: r.runDir, HealthPort: port, HealthPath: path, Theme: "calm"}
	r.send(booting)
	r.await("the DHCP word", func(s Scene) bool { return s.Word == "DHCP" })
	if r.console.Load() != 1 {
		t.Errorf("console switched off %d times", r.console.Load())
	}
	if n := probes.Load(); n != 0 {
		t.Fatalf("%d probes before the service ran", n)
	}

	status.Store(http.StatusServiceUnavailable)
	starting := State{Word: "HB STARTING", Status: "Starting HyperBEAM.", RunDir: r.runDir, HealthPort: port, HealthPath: path, Theme: "calm", Probe: true}
	r.send(starting)
	r.await("the starting word", func(s Scene) bool { return s.Word == "HB STARTING" && s.Status == starting.Status })

	// Healthy but no primary network yet: the word, the note, no code.
	status.Store(http.StatusOK)
	s := r.await("ready without network", func(s Scene) bool { return s.Word == DefaultReadyWord })
	if s.QR != "" || s.Caption != NoNetworkCaption {
		t.Fatalf("without primary-net: %+v", s)
	}

	// The network step writes primary-net: the next probe shows the code.
	if err := os.WriteFile(filepath.Join(r.runDir, "primary-net"), []byte("iface=eth0\nip=10.0.2.15\ngw=10.0.2.2\ndns=10.0.2.3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := "http://10.0.2.15:" + strconv.Itoa(port) + "/"
	s = r.await("the QR", func(s Scene) bool { return s.QR != "" })
	if s.QR != url || s.Caption != "Running at "+url || s.Theme.Name != "calm" {
		t.Fatalf("ready scene %+v", s)
	}
	if got := decodeQR(t, readBack(r.screen.mem, r.screen.geo)); got != url {
		t.Fatalf("screen QR decodes to %q, want %q", got, url)
	}

	// The service exits: red, no code, and the probe no longer matters.
	stopped := State{Word: WordStopped, Status: "Boot stopped: HyperBEAM exited with status 1.", Theme: "stopped", HealthPort: port, HealthPath: path, RunDir: r.runDir, Probe: true}
	r.send(stopped)
	s = r.await("STOPPED", func(s Scene) bool { return s.Word == WordStopped })
	if s.QR != "" || s.Theme.Name != "stopped" || s.Status != stopped.Status {
		t.Fatalf("stopped scene %+v", s)
	}
	corner := readBack(r.screen.mem, r.screen.geo).RGBAAt(0, 0)
	if corner.R < 0xb0 || corner.G > 0x10 || corner.B > 0x10 {
		t.Fatalf("stopped screen corner is %v, not red", corner)
	}

	// Same state again: nothing to redraw.
	r.send(stopped)
	r.states.Close()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("RunSplash after EOF: %v", err)
		}
		r.done <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("RunSplash did not return at end of states")
	}
	select {
	case s := <-r.drawn:
		t.Fatalf("unchanged state redrawn: %+v", s)
	default:
	}
}

func TestSplashWithoutFramebuffer(t *testing.T) {
	opened := false
	err := RunSplash(context.Background(), strings.NewReader(""), SplashOptions{
		DevRoot: t.TempDir(), FramebufferWait: 50 * time.Millisecond,
		OpenScreen: func(string) (Screen, error) { opened = true; return nil, errors.New("unreachable") },
	})
	if !errors.Is(err, ErrNoFramebuffer) || ExitCode(err) != ExitNoFramebuffer {
		t.Fatalf("err = %v (exit %d), want ErrNoFramebuffer", err, ExitCode(err))
	}
	if opened {
		t.Fatal("opened a screen that never appeared")
	}
}

func TestSplashUnsupportedScreen(t *testing.T) {
	dev := t.TempDir()
	if err := os.WriteFile(filepath.Join(dev, "fb0"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	consoleOff := false
	err := RunSplash(context.Background(), strings.NewReader(""), SplashOptions{
		DevRoot:    dev,
		OpenScreen: func(string) (Screen, error) { return nil, ErrUnsupportedFormat },
		ConsoleOff: func() error { consoleOff = true; return nil },
	})
	if !errors.Is(err, ErrUnsupportedFormat) || ExitCode(err) != ExitUnsupportedScreen {
		t.Fatalf("err = %v (exit %d)", err, ExitCode(err))
	}
	if consoleOff {
		t.Fatal("console switched off although nothing can be drawn")
	}
}

func TestWaitForDeviceAppearingLate(t *testing.T) {
	dev := t.TempDir()
	result := make(chan error, 1)
	go func() { result <- WaitForDevice(context.Background(), dev, "fb0", 30*time.Second) }()
	if err := os.WriteFile(filepath.Join(dev, "fb0"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-result:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fb0 appeared but the wait did not end")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WaitForDevice(ctx, t.TempDir(), "fb0", time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
}

func TestSceneFor(t *testing.T) {
	ip := mustAddr(t, "192.168.1.20")
	base := State{Word: "DHCP", Status: "Asking for an address.", HealthPort: 8734, Theme: "calm"}
	cases := []struct {
		name string
		st   State
		h    health
		want Scene
	}{
		{"booting", base, health{}, Scene{Word: "DHCP", Status: base.Status, Theme: ThemeCalm}},
		{"ready", base, health{ok: true, ip: ip, hasIP: true}, Scene{Word: "READY", Status: base.Status, QR: "http://192.168.1.20:8734/", Caption: "Running at http://192.168.1.20:8734/", Theme: ThemeCalm}},
		{"ready word from the profile", withReady(base, "HB READY"), health{ok: true}, Scene{Word: "HB READY", Status: base.Status, Caption: NoNetworkCaption, Theme: ThemeCalm}},
		{"stopped wins over health", withWord(base, WordStopped), health{ok: true, ip: ip, hasIP: true}, Scene{Word: WordStopped, Status: base.Status, Theme: ThemeStopped}},
		{"stopped theme, other word", withTheme(base, "stopped"), health{ok: true, ip: ip, hasIP: true}, Scene{Word: "DHCP", Status: base.Status, Theme: ThemeStopped}},
		{"unknown theme is calm", withTheme(base, "neon"), health{}, Scene{Word: "DHCP", Status: base.Status, Theme: ThemeCalm}},
	}
	for _, c := range cases {
		if got := sceneFor(c.st, c.h); got != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
	}
}

func withReady(s State, w string) State  { s.ReadyWord = w; return s }
func withWord(s State, w string) State   { s.Word = w; return s }
func withTheme(s State, th string) State { s.Theme = th; return s }

func TestReadStatesSkipsBadLines(t *testing.T) {
	input := strings.Join([]string{
		`{"word":"BOOTING"}`,
		``,
		`not json`,
		`{"word":` + strings.Repeat(" ", maxStateLine+10) + `"HUGE"}`,
		`{"word":"WIFI","health_port":"not a number"}`,
		`{"word":"DHCP"}`,
	}, "\n") + "\n" + `{"word":"LAST, NO NEWLINE"}`
	out := make(chan State, 10)
	var log strings.Builder
	if err := readStates(context.Background(), strings.NewReader(input), out, &log); err != nil {
		t.Fatal(err)
	}
	close(out)
	var words []string
	for st := range out {
		words = append(words, st.Word)
	}
	if got := strings.Join(words, ","); got != "BOOTING,DHCP,LAST, NO NEWLINE" {
		t.Fatalf("words %q", got)
	}
	if n := strings.Count(log.String(), "skipped"); n != 3 {
		t.Errorf("%d skip reports, want 3:\n%s", n, log.String())
	}
}

func TestReadStatesReportsReadErrors(t *testing.T) {
	boom := errors.New("pipe broke")
	r := io.MultiReader(strings.NewReader("{\"word\":\"A\"}\n"), errReader{boom})
	out := make(chan State, 1)
	if err := readStates(context.Background(), r, out, io.Discard); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

var _ Screen = (*Framebuffer)(nil)
