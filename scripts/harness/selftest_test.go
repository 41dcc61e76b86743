package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// bootTestGuest builds testdata/evinit into an initramfs with the virtio
// console modules and returns its path.
func bootTestGuest(t *testing.T, ctx context.Context, k Kernel) string {
	t.Helper()
	dir := t.TempDir()
	initBin := filepath.Join(dir, "init")
	if err := BuildStatic(ctx, "./scripts/harness/testdata/evinit", initBin); err != nil {
		t.Fatal(err)
	}
	a := NewInitramfs()
	if err := a.AddHostFile("init", initBin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := a.AddModules(k, "virtio_pci", "virtio_console"); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "initrd.cpio")
	if err := a.WriteFile(out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBootDirectKernelEvent boots the Debian kernel with SeaBIOS and a tiny
// Go /init, and checks that the guest's event (carrying a nonce only this
// boot knows) arrives on org.inert.events, that QEMU exits on the guest's
// power-off, and that no process is left behind.
func TestBootDirectKernelEvent(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	k, err := DefaultKernel()
	if err != nil {
		t.Fatal(err)
	}
	initrd := bootTestGuest(t, ctx, k)
	nonceBytes := make([]byte, 8)
	_, _ = rand.Read(nonceBytes)
	nonce := hex.EncodeToString(nonceBytes)

	vm, err := Start(ctx, Config{
		Name:     "selftest",
		WorkDir:  t.TempDir(),
		Kernel:   k.Image,
		Initrd:   initrd,
		Append:   "console=ttyS0 panic=-1 harness.nonce=" + nonce,
		Firmware: FirmwareSeaBIOS,
		VGA:      "none",
		Memory:   512,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vm.Stop() })
	pid := vm.Pid()

	var got struct {
		Step, Nonce string
		Pid         int
	}
	err = vm.WaitEvent(ctx, func(line []byte) bool {
		return json.Unmarshal(line, &got) == nil && got.Step == "selftest"
	})
	if err != nil {
		t.Fatalf("awaiting guest event: %v\nserial:\n%s", err, tail(vm.SerialText(), 20))
	}
	if got.Nonce != nonce {
		t.Errorf("event nonce = %q, want %q (the one on this boot's cmdline)", got.Nonce, nonce)
	}
	if got.Pid != 1 {
		t.Errorf("event from pid %d, want the guest's /init (1)", got.Pid)
	}
	if status, ok := vm.LastStatus(); !ok || status != "guest up" {
		t.Errorf("LastStatus = %q, %v", status, ok)
	}
	if err := vm.Wait(ctx); err != nil {
		t.Fatalf("qemu exit after guest power-off: %v", err)
	}
	if alive(pid) {
		t.Errorf("qemu pid %d still alive after exit", pid)
	}
	if !strings.Contains(vm.SerialText(), "Linux version "+strings.SplitN(k.Version, "-", 2)[0]) {
		t.Errorf("serial log does not show the kernel booting:\n%s", tail(vm.SerialText(), 10))
	}
	// The port is closed after exit: a waiter that matches nothing must end.
	if err := vm.WaitEvent(ctx, func([]byte) bool { return false }); !errors.Is(err, ErrVMExited) {
		t.Errorf("WaitEvent after exit = %v, want ErrVMExited", err)
	}
}

func tail(s string, n int) string { return lastLines(s, n) }
