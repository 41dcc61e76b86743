package storage

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

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/tcp"
)

// testTPM is a real swtpm for one test, stopped by pid at cleanup.
type testTPM struct {
	cmdAddr, ctrlAddr string
}

var (
	manufacturedOnce  sync.Once
	manufacturedState []byte
	manufacturedErr   error
)

// startSwtpm runs `swtpm socket` on a freshly manufactured state (sha256
// and sha384 banks, like the e2e harness) on two free loopback ports.
func startSwtpm(t testing.TB) *testTPM {
	t.Helper()
	manufacturedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "inert-storage-swtpm-")
		if err != nil {
			manufacturedErr = err
			return
		}
		defer os.RemoveAll(dir)
		out, err := exec.Command("swtpm_setup", "--tpm2", "--tpmstate", dir, "--pcr-banks", "sha256,sha384", "--overwrite").CombinedOutput()
		if err != nil {
			manufacturedErr = fmt.Errorf("swtpm_setup: %v\n%s", err, out)
			return
		}
		manufacturedState, manufacturedErr = os.ReadFile(filepath.Join(dir, "tpm2-00.permall"))
	})
	if manufacturedErr != nil {
		t.Fatal(manufacturedErr)
	}
	state := t.TempDir()
	if err := os.WriteFile(filepath.Join(state, "tpm2-00.permall"), manufacturedState, 0o600); err != nil {
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
		inst := &testTPM{cmdAddr: fmt.Sprintf("127.0.0.1:%d", port), ctrlAddr: fmt.Sprintf("127.0.0.1:%d", port+1)}
		err := awaitListening(inst.ctrlAddr, exited)
		if err == nil {
			err = awaitListening(inst.cmdAddr, exited)
		}
		if err != nil {
			_ = cmd.Process.Kill()
			if errors.Is(err, errSwtpmExited) {
				continue // lost the port race
			}
			t.Fatalf("swtpm: %v (%s)", err, stderr.String())
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
		})
		return inst
	}
	t.Fatal("swtpm did not start on any port pair")
	return nil
}

// opener connects go-tpm's TCP transport (never PowerOn: swtpm is started).
func (s *testTPM) opener() TPMOpener {
	return func() (transport.TPMCloser, error) {
		return tcp.Open(tcp.Config{CommandAddress: s.cmdAddr, PlatformAddress: s.ctrlAddr})
	}
}

// extend extends a sha256 PCR with the hash of word, as a boot phase would.
func (s *testTPM) extend(t testing.TB, pcr int, word string) {
	t.Helper()
	tp, err := s.opener()()
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	sum := sha256Sum([]byte(word))
	_, err = tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests:   tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: tpm2.TPMAlgSHA256, Digest: sum}}},
	}.Execute(tp)
	if err != nil {
		t.Fatal(err)
	}
}

var errSwtpmExited = errors.New("swtpm exited")

func awaitListening(addr string, exited <-chan error) error {
	deadline := time.Now().Add(10 * time.Second)
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
			return fmt.Errorf("swtpm not listening on %s", addr)
		}
	}
}

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
