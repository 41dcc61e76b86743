// Package swtpmtest starts real software TPMs (swtpm, a Debian package) for
// tests that drive a TPM through go-tpm's TCP transport: the measurement
// tests and the zone key tests. It is imported only by _test files.
package swtpmtest

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

// TPM is one running swtpm, stopped by pid when the test ends.
type TPM struct {
	CommandAddr, PlatformAddr string
}

// Start manufactures a TPM 2.0 state with the given PCR banks (swtpm_setup,
// once per bank set per process) and runs `swtpm socket` on two free
// loopback ports until the test ends.
func Start(t testing.TB, banks ...string) *TPM {
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
		tpm := &TPM{
			CommandAddr:  fmt.Sprintf("127.0.0.1:%d", port),
			PlatformAddr: fmt.Sprintf("127.0.0.1:%d", port+1),
		}
		err := awaitListening(tpm.PlatformAddr, exited, 10*time.Second)
		if err == nil {
			err = awaitListening(tpm.CommandAddr, exited, 10*time.Second)
		}
		if err != nil {
			_ = cmd.Process.Kill()
			if errors.Is(err, errExited) {
				t.Logf("swtpm on port %d exited (%s), retrying", port, stderr.String())
				continue // lost the port race
			}
			t.Fatalf("swtpm: %v (%s)", err, stderr.String())
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
		})
		return tpm
	}
	t.Fatal("swtpm did not start on any port pair")
	return nil
}

// Open connects go-tpm's TCP transport. It never sends PowerOn: swtpm was
// started with startup-clear.
func (s *TPM) Open() (*tcp.TPM, error) {
	return tcp.Open(tcp.Config{CommandAddress: s.CommandAddr, PlatformAddress: s.PlatformAddr})
}

var (
	manufacturedMu    sync.Mutex
	manufacturedState = map[string][]byte{}
)

// manufactured runs swtpm_setup once per bank set and returns the fresh
// state, so each test starts from a just-manufactured TPM quickly.
func manufactured(banks []string) ([]byte, error) {
	key := strings.Join(banks, ",")
	if key == "" {
		key = "sha256,sha384"
	}
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

var errExited = errors.New("swtpm exited")

// awaitListening waits until addr accepts connections, swtpm exits, or the
// limit passes.
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
			return fmt.Errorf("%w: %v", errExited, err)
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
