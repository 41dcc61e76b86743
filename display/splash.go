package display

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"net/netip"
	"time"
)

// State is one JSON line PID 1 writes to the splash's fd 3.
type State struct {
	Word       string `json:"word"`
	Status     string `json:"status"`
	RunDir     string `json:"run_dir"`
	HealthPort int    `json:"health_port"`
	HealthPath string `json:"health_path"`
	Theme      string `json:"theme"` // "calm" or "stopped"
	// ReadyWord replaces Word once the health probe passes ("READY").
	ReadyWord string `json:"ready_word,omitempty"`
	// Probe is set by PID 1 while the service runs: only then is probing
	// its health meaningful.
	Probe bool `json:"probe"`
}

// Words with a meaning to the splash itself.
const (
	WordStopped      = "STOPPED"
	DefaultReadyWord = "READY"
	// NoNetworkCaption stands where the code would be when the service is
	// healthy but there is no primary address to put in it.
	NoNetworkCaption = "no network yet"
)

// Screen is what the splash draws on: the framebuffer, or a fake in tests.
type Screen interface {
	Bounds() image.Rectangle
	Draw(frame *image.RGBA) error
	Close() error
}

// SplashOptions are the splash's knobs and test seams; zero values mean the
// production defaults.
type SplashOptions struct {
	DevRoot         string        // default /dev
	SysRoot         string        // default /sys
	FramebufferWait time.Duration // how long to wait for fb0; default 15s
	ProbeInterval   time.Duration // health probe period; default 3s
	ProbeTimeout    time.Duration // one probe's limit; default 2s
	Log             io.Writer     // diagnostics (never secrets); default discard

	// OpenScreen opens the screen under DevRoot; default OpenFramebuffer.
	OpenScreen func(devRoot string) (Screen, error)
	// ConsoleOff silences the text console; default ConsoleSwitch.Off.
	ConsoleOff func() error
	// Drawn is called after each frame reached the screen.
	Drawn func(Scene)
}

func (o SplashOptions) withDefaults() SplashOptions {
	if o.DevRoot == "" {
		o.DevRoot = "/dev"
	}
	if o.SysRoot == "" {
		o.SysRoot = "/sys"
	}
	if o.FramebufferWait <= 0 {
		o.FramebufferWait = 15 * time.Second
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = 3 * time.Second
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = 2 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.OpenScreen == nil {
		o.OpenScreen = func(devRoot string) (Screen, error) { return OpenFramebuffer(devRoot) }
	}
	if o.ConsoleOff == nil {
		o.ConsoleOff = ConsoleSwitch{DevRoot: o.DevRoot, SysRoot: o.SysRoot}.Off
	}
	return o
}

// health is what the last probe found.
type health struct {
	ok    bool
	ip    netip.Addr
	hasIP bool
}

// sceneFor is the whole policy of what the screen says, as a pure function.
func sceneFor(st State, h health) Scene {
	sc := Scene{Word: st.Word, Status: st.Status, Theme: ThemeByName(st.Theme)}
	if stopped(st) {
		sc.Theme = ThemeStopped
		return sc
	}
	if !h.ok {
		return sc
	}
	sc.Word = st.ReadyWord
	if sc.Word == "" {
		sc.Word = DefaultReadyWord
	}
	if h.hasIP {
		url := serviceURL(h.ip, st.HealthPort)
		sc.QR, sc.Caption = url, "Running at "+url
	} else {
		sc.Caption = NoNetworkCaption
	}
	return sc
}

func stopped(st State) bool { return st.Word == WordStopped || st.Theme == ThemeStopped.Name }

// wantsProbe: the service runs, the boot has not stopped, and there is
// somewhere to ask.
func wantsProbe(st State) bool {
	return st.Probe && !stopped(st) && healthURL(st.HealthPort, st.HealthPath) != ""
}

// RunSplash waits for the framebuffer, silences the console and draws each
// new state read from states (JSON lines) until states ends (nil) or ctx is
// done. While the service runs and the state is not STOPPED it probes the service's health itself
// and, once that answers 200, shows the service URL as a QR code. Without a
// framebuffer it returns ErrNoFramebuffer; with one it cannot draw on,
// ErrUnsupportedFormat or ErrBadGeometry. It reads nothing but states.
func RunSplash(ctx context.Context, states io.Reader, opts SplashOptions) error {
	opts = opts.withDefaults()
	if err := WaitForDevice(ctx, opts.DevRoot, "fb0", opts.FramebufferWait); err != nil {
		return err
	}
	screen, err := opts.OpenScreen(opts.DevRoot)
	if err != nil {
		return err
	}
	defer screen.Close()
	if err := opts.ConsoleOff(); err != nil {
		fmt.Fprintf(opts.Log, "splash: %v\n", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	incoming := make(chan State)
	readDone := make(chan error, 1)
	go func() { readDone <- readStates(ctx, states, incoming, opts.Log) }()

	s := &splash{opts: opts, screen: screen, frame: image.NewRGBA(screen.Bounds()), probe: newHealthProbe(opts.ProbeTimeout)}
	// Cover whatever the console left on screen right away.
	s.show(Scene{Theme: ThemeCalm})

	probeDone := make(chan health, 1)
	probing := false
	var ticker *time.Ticker
	var tick <-chan time.Time
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	startProbe := func() {
		url := healthURL(s.state.HealthPort, s.state.HealthPath)
		if probing || !wantsProbe(s.state) {
			return
		}
		probing = true
		runDir := s.state.RunDir
		go func() {
			h := health{ok: s.probe.healthy(ctx, url)}
			if h.ok {
				h.ip, h.hasIP = primaryIP(runDir)
			}
			probeDone <- h
		}()
	}

	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-readDone:
			return err
		case st := <-incoming:
			s.state = st
			if !wantsProbe(st) {
				s.health = health{}
				if ticker != nil {
					ticker.Stop()
					ticker, tick = nil, nil
				}
			} else {
				if ticker == nil {
					ticker = time.NewTicker(opts.ProbeInterval)
					tick = ticker.C
				}
				startProbe()
			}
			s.redraw()
		case <-tick:
			startProbe()
		case h := <-probeDone:
			probing = false
			if wantsProbe(s.state) {
				s.health = h
			}
			s.redraw()
		}
	}
}

// splash holds what is on screen now.
type splash struct {
	opts   SplashOptions
	screen Screen
	frame  *image.RGBA
	probe  *healthProbe
	state  State
	health health
	shown  Scene
}

func (s *splash) redraw() {
	if scene := sceneFor(s.state, s.health); scene != s.shown {
		s.show(scene)
	}
}

func (s *splash) show(scene Scene) {
	if err := Render(s.frame, scene); err != nil {
		fmt.Fprintf(s.opts.Log, "splash: %v\n", err)
	}
	if err := s.screen.Draw(s.frame); err != nil {
		fmt.Fprintf(s.opts.Log, "splash: draw: %v\n", err)
		return
	}
	s.shown = scene
	if s.opts.Drawn != nil {
		s.opts.Drawn(scene)
	}
}

// maxStateLine caps one JSON line from PID 1; longer lines are skipped whole.
const maxStateLine = 64 << 10

// readStates decodes JSON lines from r into out until EOF (nil) or ctx ends.
// Malformed or oversized lines are reported and skipped: a bad line never
// ends the splash.
func readStates(ctx context.Context, r io.Reader, out chan<- State, log io.Writer) error {
	br := bufio.NewReaderSize(r, maxStateLine)
	skipping := false
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			if !skipping {
				fmt.Fprintf(log, "splash: state line longer than %d bytes skipped\n", maxStateLine)
			}
			skipping = true
			continue
		case skipping:
			skipping = err != nil
			if err == nil {
				continue
			}
		case len(bytes.TrimSpace(line)) > 0:
			var st State
			if jerr := json.Unmarshal(line, &st); jerr != nil {
				fmt.Fprintf(log, "splash: malformed state line skipped: %v\n", jerr)
			} else {
				select {
				case out <- st:
				case <-ctx.Done():
					return nil
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("display: reading states: %w", err)
		}
	}
}
