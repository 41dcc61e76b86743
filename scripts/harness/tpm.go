package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

var (
	// ErrTPMSetup means swtpm_setup could not manufacture the TPM.
	ErrTPMSetup = errors.New("harness: swtpm_setup failed")
	// ErrTPMStart means swtpm did not come up.
	ErrTPMStart = errors.New("harness: swtpm did not start")
)

// DefaultPCRBanks are the banks a fresh TPM activates when the caller names
// none: two, so that "extend every active bank" is exercised.
var DefaultPCRBanks = []string{"sha256", "sha384"}

// TPM is a running swtpm (TPM 2.0) serving QEMU's tpm-emulator backend on a
// unix control socket.
type TPM struct {
	Dir        string // state directory
	CtrlSocket string // QEMU: -chardev socket,path=CtrlSocket
	LogPath    string
	proc       *process
}

// StartTPM manufactures a TPM in dir (created if needed; an existing state
// is reused) with an EK, EK and platform certificates and locked NV, and
// starts swtpm on dir/ctrl.sock. banks selects the active PCR banks
// (DefaultPCRBanks when empty). Stop it with Stop.
func StartTPM(ctx context.Context, dir string, banks ...string) (*TPM, error) {
	if len(banks) == 0 {
		banks = DefaultPCRBanks
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTPMSetup, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(abs, "tpm2-00.permall")); errors.Is(err, os.ErrNotExist) {
		if err := manufactureTPM(ctx, abs, banks); err != nil {
			return nil, err
		}
	}
	t := &TPM{
		Dir:        abs,
		CtrlSocket: filepath.Join(abs, "ctrl.sock"),
		LogPath:    filepath.Join(abs, "swtpm.log"),
	}
	_ = os.Remove(t.CtrlSocket)
	cmd := exec.Command("swtpm", "socket", "--tpm2",
		"--tpmstate", "dir="+abs,
		"--ctrl", "type=unixio,path="+t.CtrlSocket,
		"--pid", "file="+filepath.Join(abs, "swtpm.pid"),
		"--log", "file="+t.LogPath+",level=5")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if t.proc, err = startProcess(cmd); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTPMStart, err)
	}
	if err := t.awaitSocket(ctx, 10*time.Second); err != nil {
		_ = t.Stop()
		return nil, fmt.Errorf("%w: %v: %s", ErrTPMStart, err, strings.TrimSpace(stderr.String()))
	}
	return t, nil
}

func manufactureTPM(ctx context.Context, dir string, banks []string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "swtpm_setup", "--tpm2",
		"--tpmstate", dir,
		"--create-ek-cert", "--create-platform-cert", "--lock-nvram",
		"--pcr-banks", strings.Join(banks, ","))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %v: %s", ErrTPMSetup, err, lastLines(string(out), 5))
	}
	return nil
}

// awaitSocket waits for "swtpm control socket" to exist, or for swtpm to die.
func (t *TPM) awaitSocket(ctx context.Context, limit time.Duration) error {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if fi, err := os.Stat(t.CtrlSocket); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return nil
		}
		select {
		case <-t.proc.done:
			return fmt.Errorf("swtpm exited: %v", t.proc.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("control socket %s not there after %s", t.CtrlSocket, limit)
		case <-tick.C:
		}
	}
}

// Pid is swtpm's process id.
func (t *TPM) Pid() int { return t.proc.Pid() }

// QEMUArgs are the QEMU arguments that attach this TPM as a TIS device
// (/dev/tpm0 and /dev/tpmrm0 in the guest).
func (t *TPM) QEMUArgs() []string {
	return []string{
		"-chardev", "socket,id=chrtpm,path=" + t.CtrlSocket,
		"-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
		"-device", "tpm-tis,tpmdev=tpm0",
	}
}

// Stop ends swtpm by pid (SIGTERM, then SIGKILL after a bound). Calling it
// again is harmless.
func (t *TPM) Stop() error {
	if t == nil || t.proc == nil {
		return nil
	}
	_ = t.proc.stop(syscall.SIGTERM, 5*time.Second)
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
