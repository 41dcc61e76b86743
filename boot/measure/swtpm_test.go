package measure

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2/transport/tcp"
)

// swtpmInstance is one real software TPM started for a test.
type swtpmInstance struct {
	cmdAddr, ctrlAddr string
	port              int
}

// startSwtpm manufactures a TPM 2.0 state with the given PCR banks and runs
// `swtpm socket` on two free loopback ports until the test ends; it is
// stopped by pid.
func startSwtpm(t testing.TB, banks ...string) *swtpmInstance {
	t.Helper()
	state := t.TempDir()
	permall, err := manufactured(banks)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "tpm2-00.permall"), permall, 0o600); err != nil {
		t.Fatal(err)
	}
	for attempt := 0; attempt < 5; attempt++ {
		port := freePortPair(t)
		cmd := exec.Command("swtpm", "socket", "--tpm2",
			"--server", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port),
			"--ctrl", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port+1),
			"--tpmstate", "dir="+state, "--flags", "not-need-init,startup-clear")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("start swtpm: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		inst := &swtpmInstance{
			cmdAddr:  fmt.Sprintf("127.0.0.1:%d", port),
			ctrlAddr: fmt.Sprintf("127.0.0.1:%d", port+1),
			port:     port,
		}
		err := awaitListening(inst.ctrlAddr, exited, 10*time.Second)
		if err == nil {
			err = awaitListening(inst.cmdAddr, exited, 10*time.Second)
		}
		if err != nil {
			cmd.Process.Kill()
			if errors.Is(err, errSwtpmExited) {
				t.Logf("swtpm on port %d exited (%s), retrying", port, stderr.String())
				continue
			}
			t.Fatalf("swtpm: %v (%s)", err, stderr.String())
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
		})
		return inst
	}
	t.Fatal("swtpm did not start on any port pair")
	return nil
}

var (
	manufacturedMu    sync.Mutex
	manufacturedState = map[string][]byte{}
)

// manufactured runs swtpm_setup once per bank set and returns the fresh
// state, so each test starts from a just-manufactured TPM quickly.
func manufactured(banks []string) ([]byte, error) {
	key := strings.Join(banks, ",")
	manufacturedMu.Lock()
	defer manufacturedMu.Unlock()
	if s, ok := manufacturedState[key]; ok {
		return s, nil
	}
	dir, err := os.MkdirTemp("", "inert-swtpm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	setup := exec.Command("swtpm_setup", "--tpm2", "--tpmstate", dir, "--pcr-banks", key, "--overwrite")
	if out, err := setup.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("swtpm_setup: %v\n%s", err, out)
	}
	s, err := os.ReadFile(filepath.Join(dir, "tpm2-00.permall"))
	if err != nil {
		return nil, err
	}
	manufacturedState[key] = s
	return s, nil
}

var errSwtpmExited = errors.New("swtpm exited")

// awaitListening waits for "swtpm control port accepts connections".
func awaitListening(addr string, exited <-chan error, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("%w: %v", errSwtpmExited, err)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("swtpm not listening on %s after %v", addr, limit)
		}
	}
}

// freePortPair finds a port p such that p and p+1 are free right now.
func freePortPair(t testing.TB) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1))
		l.Close()
		if err == nil {
			l2.Close()
			return p
		}
	}
	t.Fatal("no free port pair")
	return 0
}

// open connects go-tpm's TCP transport (never PowerOn: swtpm is started).
func (s *swtpmInstance) open(t testing.TB) *tcp.TPM {
	t.Helper()
	tpm, err := tcp.Open(tcp.Config{CommandAddress: s.cmdAddr, PlatformAddress: s.ctrlAddr})
	if err != nil {
		t.Fatalf("open swtpm: %v", err)
	}
	return tpm
}

// tempLog creates a fresh log in a temp dir.
func tempLog(t testing.TB) *Log {
	t.Helper()
	l, err := CreateLog(filepath.Join(t.TempDir(), "run/log/systemd/tpm2-measure.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func mustNotExist(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		t.Fatalf("%s exists", path)
	}
}
