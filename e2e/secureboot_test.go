package e2e

import (
	"bytes"
	"context"
	"debug/pe"
	"os"
	"path/filepath"
	"testing"

	"inert/scripts/harness"
)

// TestSecureBootEnforcing boots the signed stick with our PK/KEK/db enrolled
// in OVMF (Secure Boot enforcing, SMM firmware), and the same stick with one
// byte of the kernel changed after signing, which the firmware must refuse
// before /init ever runs.
func TestSecureBootEnforcing(t *testing.T) {
	t.Parallel()
	t.Run("signed boots", func(t *testing.T) {
		img, _ := stick{}.image(t)
		vm := boot(t, harness.Config{Image: img, SecureBoot: true, TPM: true})
		awaitHealthy(t, vm, bootLimit)
		tee := field[map[string]any](t, evidence(t, vm), "tee")
		if tee["tpm"] != true {
			t.Errorf("tee.json %v", tee)
		}
	})
	t.Run("tampered refused", func(t *testing.T) {
		_, signed := stick{}.image(t)
		tampered := filepath.Join(t.TempDir(), "tampered.efi")
		writeFile(t, tampered, string(flipKernelByte(t, signed)))
		img := filepath.Join(t.TempDir(), "tampered.img")
		if err := run(repoRoot, inertCLI, "image", "--uki", tampered, "--out", img); err != nil {
			t.Fatal(err)
		}
		vm := boot(t, harness.Config{Image: img, SecureBoot: true, TPM: true})
		ctx, cancel := context.WithTimeout(context.Background(), bootLimit)
		defer cancel()
		if err := vm.WaitSerial(ctx, harness.FirmwareRefusal); err != nil {
			t.Fatalf("the firmware did not refuse the tampered UKI: %v", err)
		}
		// Nothing of inert ran: no event ever reached the port.
		if evs := events(vm); len(evs) != 0 {
			t.Errorf("the tampered UKI reached /init: %v", evs[0])
		}
	})
}

// flipKernelByte returns the signed UKI with one byte inside .linux changed.
func flipKernelByte(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := pe.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	s := f.Section(".linux")
	if s == nil {
		t.Fatal("UKI has no .linux section")
	}
	off := int(s.Offset) + int(s.Size)/2
	b[off] ^= 0x01
	return b
}
