package display

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrConsole means the text console could not be fully silenced; kernel
// messages might then draw over the splash. The splash still draws.
var ErrConsole = errors.New("console not silenced")

// hideCursor is the VT escape that hides the text cursor. It is output
// only; the tty is never read.
const hideCursor = "\033[?25l"

// ConsoleSwitch turns the text console off so that only the splash draws on
// the screen: the cursor hidden, the VT in KD_GRAPHICS mode (the kernel then
// stops drawing text on it) and fbcon unbound from the framebuffer.
type ConsoleSwitch struct {
	DevRoot string // where tty0 lives, normally /dev
	SysRoot string // normally /sys
	// SetMode issues KDSETMODE on the tty; nil means the real ioctl. Tests
	// record calls here, since a fake tty0 is a plain file.
	SetMode func(tty *os.File, mode int) error
}

// Off does every step it can and reports all that failed, wrapped in
// ErrConsole.
func (c ConsoleSwitch) Off() error {
	var errs []error
	if err := c.unbindFbcon(); err != nil {
		errs = append(errs, err)
	}
	if err := c.graphicsMode(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConsole, errors.Join(errs...))
	}
	return nil
}

func (c ConsoleSwitch) graphicsMode() error {
	path := filepath.Join(c.DevRoot, "tty0")
	// Write-only and no controlling tty: the splash must never be able to
	// read a keyboard, nor acquire one.
	tty, err := os.OpenFile(path, os.O_WRONLY|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer tty.Close()
	var errs []error
	if _, err := tty.WriteString(hideCursor); err != nil {
		errs = append(errs, fmt.Errorf("hide cursor on %s: %w", path, err))
	}
	setMode := c.SetMode
	if setMode == nil {
		setMode = kdSetMode
	}
	if err := setMode(tty, kdGraphics); err != nil {
		errs = append(errs, fmt.Errorf("KDSETMODE KD_GRAPHICS on %s: %w", path, err))
	}
	return errors.Join(errs...)
}

func kdSetMode(tty *os.File, mode int) error {
	return unix.IoctlSetInt(int(tty.Fd()), ioctlKDSetMode, mode)
}

// unbindFbcon writes 0 to the bind file of every VT console backed by the
// framebuffer ("(M) frame buffer device"). Having no fbcon is fine.
func (c ConsoleSwitch) unbindFbcon() error {
	dir := filepath.Join(c.SysRoot, "class", "vtconsole")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "vtcon") {
			continue
		}
		name, err := readSmallFile(filepath.Join(dir, e.Name(), "name"), 256)
		if err != nil || !strings.Contains(string(name), "frame buffer") {
			continue
		}
		bind := filepath.Join(dir, e.Name(), "bind")
		// O_TRUNC is refused by some sysfs attributes; plain write-only is what echo does.
		f, err := os.OpenFile(bind, os.O_WRONLY, 0)
		if err == nil {
			_, err = f.WriteString("0")
			err = errors.Join(err, f.Close())
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("unbind %s: %w", bind, err))
		}
	}
	return errors.Join(errs...)
}

// readSmallFile reads at most limit bytes of path.
func readSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}
