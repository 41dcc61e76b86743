package harness

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"os"
	"os/exec"
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
	if testing.Short() {
		t.Skip("boots QEMU (VM rung); run without -short")
	}
	// About 5 s on an idle machine under TCG; the bound allows a loaded CI host.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
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

// usbStickImage writes a GPT disk image whose ESP boots systemd-boot
// (Debian's systemd-boot-efi) into kernel+initrd with the given options:
// the same path OVMF takes to inert's UKI on a stick, built with the
// standard tools (sgdisk, mkfs.vfat, mtools) and no root.
func usbStickImage(t *testing.T, ctx context.Context, kernel, initrd, options string) string {
	t.Helper()
	return usbStickImageWith(t, ctx, "/usr/lib/systemd/boot/efi/systemd-bootx64.efi", kernel, initrd, options)
}

// usbStickImageWith is usbStickImage with the given bootloader as BootX64.efi.
func usbStickImageWith(t *testing.T, ctx context.Context, bootloader, kernel, initrd, options string) string {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, "stick.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(128 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	files := map[string]string{
		"loader.conf": "default t.conf\ntimeout 0\n",
		"t.conf":      "title harness\nlinux /vmlinuz\ninitrd /initrd\noptions " + options + "\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	part := img + "@@1M"
	steps := [][]string{
		{"sgdisk", "-n", "1:2048:0", "-t", "1:ef00", "-c", "1:ESP", img},
		{"mkfs.vfat", "-F", "32", "--offset", "2048", img, "126976"},
		{"mmd", "-i", part, "::/EFI", "::/EFI/Boot", "::/loader", "::/loader/entries"},
		{"mcopy", "-i", part, bootloader, "::/EFI/Boot/BootX64.efi"},
		{"mcopy", "-i", part, kernel, "::/vmlinuz"},
		{"mcopy", "-i", part, initrd, "::/initrd"},
		{"mcopy", "-i", part, filepath.Join(dir, "loader.conf"), "::/loader/loader.conf"},
		{"mcopy", "-i", part, filepath.Join(dir, "t.conf"), "::/loader/entries/t.conf"},
	}
	for _, s := range steps {
		if out, err := exec.CommandContext(ctx, s[0], s[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", s, err, out)
		}
	}
	return img
}

// TestBootUSBStickOVMF boots OVMF from a USB stick on qemu-xhci with a TPM
// and VGA std, checks the guest's event (the TPM and framebuffer are there),
// takes a screendump whose size must match the guest's framebuffer, and
// checks that Stop leaves neither QEMU nor swtpm running.
func TestBootUSBStickOVMF(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU (VM rung); run without -short")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	k, err := DefaultKernel()
	if err != nil {
		t.Fatal(err)
	}
	initrd := bootTestGuest(t, ctx, k)
	img := usbStickImage(t, ctx, k.Image, initrd, "console=ttyS0 quiet panic=-1 harness.hold=1 harness.nonce=stick")

	vm, err := Start(ctx, Config{
		Name:    "stick",
		WorkDir: t.TempDir(),
		Image:   img,
		TPM:     true,
		Net:     true,
		Memory:  512,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vm.Stop() })
	if vm.HostPort() == 0 {
		t.Error("Net without HostPort did not pick a port")
	}
	var got struct {
		Step, Nonce, Fb0 string
		Tpm0             bool
	}
	err = vm.WaitEvent(ctx, func(line []byte) bool {
		return json.Unmarshal(line, &got) == nil && got.Step == "selftest"
	})
	if err != nil {
		t.Fatalf("awaiting guest event: %v\nserial:\n%s", err, tail(vm.SerialText(), 20))
	}
	if got.Nonce != "stick" {
		t.Errorf("nonce %q: the boot did not use the stick's loader entry", got.Nonce)
	}
	if !got.Tpm0 {
		t.Error("guest has no /sys/class/tpm/tpm0 with TPM on")
	}
	var fbW, fbH int
	if _, err := fmt.Sscanf(got.Fb0, "%d,%d", &fbW, &fbH); err != nil {
		t.Fatalf("guest framebuffer size %q: %v", got.Fb0, err)
	}
	shot := filepath.Join(t.TempDir(), "screen.png")
	if err := vm.Screendump(shot); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Width != fbW || cfg.Height != fbH {
		t.Errorf("screendump %dx%d, guest framebuffer %dx%d", cfg.Width, cfg.Height, fbW, fbH)
	}
	qemuPid, tpmPid := vm.Pid(), vm.TPM().Pid()
	if err := vm.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	for name, pid := range map[string]int{"qemu": qemuPid, "swtpm": tpmPid} {
		if alive(pid) {
			t.Errorf("%s pid %d alive after Stop", name, pid)
		}
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
