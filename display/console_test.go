package display

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// fakeConsoleTree builds dev/tty0 and sys/class/vtconsole with a dummy
// console and an fbcon, as a booted Debian kernel has them.
func fakeConsoleTree(t *testing.T) (dev, sys string) {
	t.Helper()
	dev, sys = t.TempDir(), t.TempDir()
	write := func(path, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dev, "tty0"), "")
	vt := filepath.Join(sys, "class", "vtconsole")
	write(filepath.Join(vt, "vtcon0", "name"), "(S) dummy device\n")
	write(filepath.Join(vt, "vtcon0", "bind"), "1\n")
	write(filepath.Join(vt, "vtcon1", "name"), "(M) frame buffer device\n")
	write(filepath.Join(vt, "vtcon1", "bind"), "1\n")
	return dev, sys
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestConsoleOff(t *testing.T) {
	dev, sys := fakeConsoleTree(t)
	var modes []int
	c := ConsoleSwitch{DevRoot: dev, SysRoot: sys, SetMode: func(tty *os.File, mode int) error {
		if tty.Name() != filepath.Join(dev, "tty0") {
			t.Errorf("KDSETMODE on %s", tty.Name())
		}
		modes = append(modes, mode)
		return nil
	}}
	if err := c.Off(); err != nil {
		t.Fatal(err)
	}
	if len(modes) != 1 || modes[0] != kdGraphics {
		t.Errorf("modes set: %v, want [KD_GRAPHICS]", modes)
	}
	vt := filepath.Join(sys, "class", "vtconsole")
	if got := readFile(t, filepath.Join(vt, "vtcon1", "bind")); got[0] != '0' {
		t.Errorf("fbcon bind = %q, want 0", got)
	}
	if got := readFile(t, filepath.Join(vt, "vtcon0", "bind")); got != "1\n" {
		t.Errorf("dummy console bind changed to %q", got)
	}
	if got := readFile(t, filepath.Join(dev, "tty0")); got != hideCursor {
		t.Errorf("tty0 got %q, want the hide-cursor escape only", got)
	}
}

func TestConsoleOffFaults(t *testing.T) {
	ioctlFailed := errors.New("inappropriate ioctl")
	cases := []struct {
		name  string
		fault func(t *testing.T, dev, sys string, c *ConsoleSwitch)
		// fbconUnbound: the other steps still happen despite the fault.
		fbconUnbound bool
	}{
		{"no tty0", func(t *testing.T, dev, _ string, _ *ConsoleSwitch) { os.Remove(filepath.Join(dev, "tty0")) }, true},
		{"KDSETMODE refused", func(_ *testing.T, _, _ string, c *ConsoleSwitch) {
			c.SetMode = func(*os.File, int) error { return ioctlFailed }
		}, true},
		{"bind not writable", func(t *testing.T, _, sys string, _ *ConsoleSwitch) {
			bind := filepath.Join(sys, "class", "vtconsole", "vtcon1", "bind")
			os.Remove(bind)
			if err := os.Mkdir(bind, 0o755); err != nil { // a directory cannot be opened for writing
				t.Fatal(err)
			}
		}, false},
	}
	for _, c := range cases {
		dev, sys := fakeConsoleTree(t)
		sw := ConsoleSwitch{DevRoot: dev, SysRoot: sys, SetMode: func(*os.File, int) error { return nil }}
		c.fault(t, dev, sys, &sw)
		err := sw.Off()
		if !errors.Is(err, ErrConsole) {
			t.Errorf("%s: err = %v, want ErrConsole", c.name, err)
		}
		if c.name == "KDSETMODE refused" && !errors.Is(err, ioctlFailed) {
			t.Errorf("%s: cause lost: %v", c.name, err)
		}
		bind, _ := os.ReadFile(filepath.Join(sys, "class", "vtconsole", "vtcon1", "bind"))
		if c.fbconUnbound && string(bind) != "0\n" && string(bind) != "0" {
			t.Errorf("%s: fbcon left bound (%q)", c.name, bind)
		}
	}
}

// No vtconsole at all (fbcon not built in) is not a failure.
func TestConsoleOffWithoutFbcon(t *testing.T) {
	dev := t.TempDir()
	if err := os.WriteFile(filepath.Join(dev, "tty0"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c := ConsoleSwitch{DevRoot: dev, SysRoot: t.TempDir(), SetMode: func(*os.File, int) error { return nil }}
	if err := c.Off(); err != nil {
		t.Fatal(err)
	}
}
