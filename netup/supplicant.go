package netup

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Supplicant starts wpa_supplicant; tests pass a fake.
type Supplicant interface {
	// Start runs the supplicant on iface with the config file at path.
	Start(ctx context.Context, iface, path string) (SupplicantProcess, error)
}

// SupplicantProcess is one running supplicant.
type SupplicantProcess interface {
	// Lines delivers its output, one line at a time, and closes at exit.
	Lines() <-chan string
	// Wait returns when it has exited and Lines is closed.
	Wait() error
}

// ExecSupplicant is the production Supplicant: wpa_supplicant as a child
// of the worker, output on a pipe, no control socket.
type ExecSupplicant struct {
	// Path defaults to /usr/sbin/wpa_supplicant.
	Path string
}

type execProcess struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
}

func (p *execProcess) Lines() <-chan string { return p.lines }
func (p *execProcess) Wait() error {
	<-p.done
	return p.cmd.Wait()
}

// Start implements Supplicant.
func (s ExecSupplicant) Start(ctx context.Context, iface, path string) (SupplicantProcess, error) {
	bin := s.Path
	if bin == "" {
		bin = "/usr/sbin/wpa_supplicant"
	}
	cmd := exec.CommandContext(ctx, bin, "-i", iface, "-c", path, "-D", "nl80211")
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%w: supplicant pipe: %v", ErrWifi, err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: start supplicant: %v", ErrWifi, err)
	}
	p := &execProcess{cmd: cmd, lines: make(chan string, 16), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer close(p.lines)
		readLines(out, p.lines)
	}()
	return p, nil
}

// maxSupplicantLine caps one output line; the rest of a longer one is dropped.
const maxSupplicantLine = 1024

// readLines splits r into lines of at most maxSupplicantLine bytes.
func readLines(r io.Reader, out chan<- string) {
	br := bufio.NewReaderSize(r, maxSupplicantLine)
	for {
		line, isPrefix, err := br.ReadLine()
		if len(line) > 0 || (err == nil && !isPrefix) {
			out <- string(line)
		}
		for isPrefix && err == nil {
			_, isPrefix, err = br.ReadLine()
		}
		if err != nil {
			return
		}
	}
}

// supEvent is what netup takes from a supplicant output line. The lines
// themselves are never logged: only these kinds leave the parser.
type supEvent int

const (
	supNone supEvent = iota
	supConnected
	supDisconnected
	supWrongKey
	supNotFound
)

// parseSupplicantLine classifies one line of wpa_supplicant output.
func parseSupplicantLine(line string) supEvent {
	switch {
	case strings.Contains(line, "reason=WRONG_KEY"),
		strings.Contains(line, "pre-shared key may be incorrect"):
		return supWrongKey
	case strings.Contains(line, "CTRL-EVENT-CONNECTED"):
		return supConnected
	case strings.Contains(line, "CTRL-EVENT-DISCONNECTED"):
		return supDisconnected
	case strings.Contains(line, "CTRL-EVENT-NETWORK-NOT-FOUND"):
		return supNotFound
	}
	return supNone
}

// supplicantConfig renders the network block. SSID and PSK were validated
// (no quote, backslash or control character), so quoting them is safe. No
// ctrl_interface: nothing can talk to the supplicant.
func supplicantConfig(w *WifiConfig) []byte {
	b := make([]byte, 0, 128)
	b = append(b, "network={\n\tssid=\""...)
	b = append(b, w.SSID...)
	b = append(b, "\"\n\tscan_ssid=1\n\tkey_mgmt=WPA-PSK\n\tpsk=\""...)
	b = append(b, w.PSK...)
	b = append(b, "\"\n}\n"...)
	return b
}

// supplicantConfigRead bounds the wait for the supplicant to read its config.
const supplicantConfigRead = 10 * time.Second

// runSupplicantOnce runs one supplicant to its exit. Its config lives in a
// private 0700 directory of the run dir (tmpfs) as a 0600 file that is
// removed as soon as the supplicant has closed it (inotify), when it exits,
// or after supplicantConfigRead, whichever comes first.
func (n *Net) runSupplicantOnce(ctx context.Context, iface string, onEvent func(supEvent)) error {
	dir, err := os.MkdirTemp(n.cfg.RunDir, ".wpa-")
	if err != nil {
		return fmt.Errorf("%w: supplicant config dir: %v", ErrWifi, err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "wpa.conf")
	body := supplicantConfig(n.cfg.Wifi)
	err = os.WriteFile(path, body, 0o600)
	clear(body)
	if err != nil {
		return fmt.Errorf("%w: write supplicant config: %v", ErrWifi, err)
	}
	closed, stopWatch := watchReadClose(path)
	defer stopWatch()

	exited := make(chan struct{})
	defer close(exited)
	go func() {
		defer os.Remove(path)
		select {
		case <-closed:
		case <-exited:
		case <-n.clk.After(supplicantConfigRead):
		case <-ctx.Done():
		}
	}()
	proc, err := n.supplicant().Start(ctx, iface, path)
	if err != nil {
		return err
	}
	for line := range proc.Lines() {
		if ev := parseSupplicantLine(line); ev != supNone {
			onEvent(ev)
		}
	}
	return proc.Wait()
}

// watchReadClose returns a channel closed once a reader closes path (the
// supplicant has read it). Without inotify the channel never closes and
// the other removal triggers apply.
func watchReadClose(path string) (<-chan struct{}, func()) {
	closed := make(chan struct{})
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return closed, func() {}
	}
	f := os.NewFile(uintptr(fd), "inotify")
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_CLOSE_NOWRITE); err != nil {
		f.Close()
		return closed, func() {}
	}
	go func() {
		buf := make([]byte, 4096)
		// Any event on this single watch is a close after reading.
		if n, err := f.Read(buf); err == nil && n > 0 {
			close(closed)
		}
	}()
	return closed, func() { f.Close() }
}

func (n *Net) supplicant() Supplicant {
	if n.cfg.Supplicant != nil {
		return n.cfg.Supplicant
	}
	return ExecSupplicant{}
}
