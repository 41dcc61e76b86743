package harness

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// signWithTestDB signs a copy of the PE file src with the test db key using
// sbsign (an independent tool), after removing any existing signature.
func signWithTestDB(t *testing.T, ctx context.Context, keysDir, src string) string {
	t.Helper()
	dir := t.TempDir()
	unsigned := filepath.Join(dir, filepath.Base(src)+".unsigned")
	signed := filepath.Join(dir, filepath.Base(src)+".signed")
	if err := copyFile(unsigned, src); err != nil {
		t.Fatal(err)
	}
	// A file without a signature makes sbattach fail; that is fine.
	_ = exec.CommandContext(ctx, "sbattach", "--remove", unsigned).Run()
	if out, err := exec.CommandContext(ctx, "sbsign", "--key", filepath.Join(keysDir, "db.key"),
		"--cert", filepath.Join(keysDir, "db.crt"), "--output", signed, unsigned).CombinedOutput(); err != nil {
		t.Fatalf("sbsign %s: %v: %s", src, err, out)
	}
	return signed
}

// TestSecureBoot enrols throwaway keys (once; a second call is served from
// the cache), then boots USB sticks on those vars. OVMF falls back to a
// legacy loader for -kernel when verification fails, so only the stick path
// shows enforcement:
//   - systemd-boot and the kernel signed with the test db (by sbsign): the
//     guest (scripts/enroll, now only reporting) sees SecureBoot=1 and
//     SetupMode=0, and the variables hold what the .auth files carried;
//   - the same stick with an unsigned systemd-boot: the firmware refuses it
//     and the guest never runs.
func TestSecureBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU (VM rung); run without -short")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 12*time.Minute)
	defer cancel()
	keysDir, cacheDir := t.TempDir(), t.TempDir()
	writeTestKeys(t, keysDir)

	vars, err := EnrolledVars(ctx, keysDir, cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := EnrolledVars(ctx, keysDir, cacheDir)
	if err != nil || again != vars {
		t.Fatalf("second EnrolledVars = %q, %v; want cached %q", again, err, vars)
	}

	k, err := DefaultKernel()
	if err != nil {
		t.Fatal(err)
	}
	auths := map[string][]byte{}
	for _, n := range AuthNames {
		if auths[n], err = os.ReadFile(filepath.Join(keysDir, "enrol", n+".auth")); err != nil {
			t.Fatal(err)
		}
	}
	work := t.TempDir()
	initrd, err := enrolInitramfs(ctx, work, k, auths)
	if err != nil {
		t.Fatal(err)
	}
	kernel := signWithTestDB(t, ctx, keysDir, k.Image)
	const bootloader = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
	options := "console=ttyS0 quiet panic=-1"

	t.Run("signed boots with SecureBoot on", func(t *testing.T) {
		img := usbStickImageWith(t, ctx, signWithTestDB(t, ctx, keysDir, bootloader), kernel, initrd, options)
		vm, err := Start(ctx, Config{Name: "sb-signed", WorkDir: t.TempDir(), Image: img, SecureBoot: true, VarsTemplate: vars, VGA: "none", Memory: 512})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = vm.Stop() })
		var report EnrolReport
		err = vm.WaitEvent(ctx, func(line []byte) bool {
			return json.Unmarshal(line, &report) == nil && report.Step == "enrol"
		})
		if err != nil {
			t.Fatalf("no report: %v\nserial:\n%s", err, tail(vm.SerialText(), 15))
		}
		if report.State != "ok" || report.SecureBoot != 1 || report.SetupMode != 0 || report.Enrolled {
			t.Errorf("report %+v: want state ok, SecureBoot=1, SetupMode=0, no new enrolment", report)
		}
		for _, n := range AuthNames {
			payload, err := AuthPayload(auths[n])
			if err != nil {
				t.Fatal(err)
			}
			if report.Vars[n] != sha256Hex(payload) {
				t.Errorf("%s in the firmware differs from %s.auth's signature list", n, n)
			}
		}
	})

	t.Run("unsigned bootloader is refused", func(t *testing.T) {
		img := usbStickImageWith(t, ctx, bootloader, kernel, initrd, options)
		vm, err := Start(ctx, Config{Name: "sb-unsigned", WorkDir: t.TempDir(), Image: img, SecureBoot: true, VarsTemplate: vars, VGA: "none", Memory: 512})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = vm.Stop() })
		refused, cancelRefused := context.WithTimeout(ctx, 4*time.Minute)
		defer cancelRefused()
		if err := vm.WaitSerial(refused, FirmwareRefusal); err != nil {
			t.Fatalf("%v\nserial:\n%s", err, tail(vm.SerialText(), 15))
		}
		if lines, _, _ := vm.events.from(0); len(lines) != 0 {
			t.Errorf("the refused image ran anyway: %q", lines)
		}
	})
}
