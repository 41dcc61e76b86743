package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"inert/appliance"
	"inert/appliance/demo"
	"inert/scripts/harness"
	"inert/storage"
)

// Zone storage end to end: the demo manifest has one zone, ZONE_PRIMARY,
// sealed to the TPM, mounted at /var/lib/inert/zone; the demo service counts
// its starts in a file there.

const zonePartOffset = 1 << 20 // sgdisk's first partition starts at 1 MiB

// zoneDisk builds a GPT disk image with one partition named partName from
// 1 MiB to the end, filled with random bytes, with the provisioning marker
// at its start when marked.
func zoneDisk(t *testing.T, partName string, marked bool) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), strings.ToLower(partName)+".img")
	if err := run("", "truncate", "-s", "48M", img); err != nil {
		t.Fatal(err)
	}
	if err := run("", "sgdisk", "-n1:2048:0", "-c1:"+partName, img); err != nil {
		t.Fatal(err)
	}
	noise := filepath.Join(t.TempDir(), "noise")
	b := make([]byte, 2<<20)
	rand.Read(b)
	if marked {
		copy(b, storage.Marker)
	}
	if err := os.WriteFile(noise, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run("", "dd", "if="+noise, "of="+img, "bs=1M", "seek=1", "conv=notrunc", "status=none"); err != nil {
		t.Fatal(err)
	}
	return img
}

// zoneVM is a VM whose slot is released when it stops, so one test can
// boot several times in a row (the shared boot() keeps its slot to the end).
type zoneVM struct {
	*harness.VM
	once sync.Once
}

func (z *zoneVM) stop() {
	z.once.Do(func() {
		_ = z.VM.Stop()
		<-vmSlots
	})
}

func zoneBoot(t *testing.T, name, workDir, img string, disks ...string) *zoneVM {
	t.Helper()
	vmSlots <- struct{}{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	vm, err := harness.Start(ctx, harness.Config{
		Name: name, WorkDir: workDir, Image: img, ExtraDisks: disks, TPM: true, Net: true,
	})
	if err != nil {
		<-vmSlots
		t.Fatal(err)
	}
	z := &zoneVM{VM: vm}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serial log of %s:\n%s", name, tail(vm.SerialText(), 40))
		}
		z.stop()
	})
	return z
}

// luksUUID asks cryptsetup (not inert) for the volume's UUID.
func luksUUID(t *testing.T, disk string) string {
	t.Helper()
	part := filepath.Join(t.TempDir(), "part.img")
	if err := run("", "dd", "if="+disk, "of="+part, "bs=1M", "skip=1", "status=none"); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("cryptsetup", "luksUUID", part).Output()
	if err != nil {
		t.Fatalf("cryptsetup luksUUID: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func zoneState(t *testing.T, ev map[string]json.RawMessage) storage.State {
	t.Helper()
	for _, st := range field[[]storage.State](t, ev, "zones") {
		if st.Zone == storage.ZonePrimary {
			return st
		}
	}
	t.Fatalf("zones evidence has no %s", storage.ZonePrimary)
	return storage.State{}
}

func zoneFile(t *testing.T, ev map[string]json.RawMessage) demo.ZoneEvidence {
	t.Helper()
	if _, ok := ev["zone_file"]; !ok {
		t.Fatal("evidence has no zone_file: the zone is not mounted for the service")
	}
	return field[demo.ZoneEvidence](t, ev, "zone_file")
}

// TestZoneLifecycle: first boot formats and mounts, the service writes its
// file; the second boot with the same TPM reopens the same volume and the
// file is there; a boot with another operator config (PCR 12) cannot unseal
// and leaves the volume byte-identical. A ZONE_ partition without the marker
// on another disk is never written.
func TestZoneLifecycle(t *testing.T) {
	t.Parallel()
	img, _ := stick{}.image(t)
	zone := zoneDisk(t, storage.ZonePrimary, true)
	spare := zoneDisk(t, "ZONE_SPARE", false)
	spareSum := sha256File(t, spare)
	work := t.TempDir() // the swtpm state lives in work/tpm across boots

	vm := zoneBoot(t, "zone-first", work, img, zone, spare)
	awaitHealthy(t, vm.VM, bootLimit)
	ev := evidence(t, vm.VM)
	st := zoneState(t, ev)
	if !st.FormattedLUKS || !st.FormattedFilesystem || st.Mount != "/var/lib/inert/zone" || st.KeySource != "tpm" || st.Reason != "" {
		t.Fatalf("first boot zone state %+v", st)
	}
	if zf := zoneFile(t, ev); zf.Visits != 1 {
		t.Fatalf("first boot visits %d, want 1", zf.Visits)
	}
	vm.stop() // QMP quit: the power goes off under a mounted ext4
	uuid := luksUUID(t, zone)
	if uuid != st.VolumeID {
		t.Fatalf("evidence volume-id %s, cryptsetup says %s", st.VolumeID, uuid)
	}

	vm = zoneBoot(t, "zone-second", work, img, zone, spare)
	awaitHealthy(t, vm.VM, bootLimit)
	ev = evidence(t, vm.VM)
	st = zoneState(t, ev)
	if st.FormattedLUKS || st.FormattedFilesystem || st.VolumeID != uuid || st.Mount == "" {
		t.Fatalf("second boot zone state %+v (want reopened %s)", st, uuid)
	}
	if zf := zoneFile(t, ev); zf.Visits != 2 {
		t.Fatalf("second boot visits %d, want 2: the file did not survive", zf.Visits)
	}
	vm.stop()
	if luksUUID(t, zone) != uuid {
		t.Fatal("the second boot reformatted the volume")
	}

	// Another operator config: PCR 12 differs, the seal does not open.
	other, _ := stick{Config: `{"greeting":"another operator"}`}.image(t)
	zoneSum := sha256File(t, zone)
	vm = zoneBoot(t, "zone-other-config", work, other, zone, spare)
	fail := awaitEvent(t, vm.VM, bootLimit, "the storage refusal", func(e appliance.Event) bool {
		return e.Step == "storage" && e.State == appliance.StateFail
	})
	if fail.Class != appliance.ClassEnvironment || !strings.Contains(fail.Status, "TPM no longer unseals") {
		t.Errorf("refusal class %q status %q", fail.Class, fail.Status)
	}
	awaitHealthy(t, vm.VM, bootLimit) // the boot goes on without the zone
	ev = evidence(t, vm.VM)
	st = zoneState(t, ev)
	if st.Mount != "" || st.Reason == "" {
		t.Errorf("refused zone state %+v", st)
	}
	if _, ok := ev["zone_file"]; ok {
		t.Error("the service sees a zone file although the zone stayed locked")
	}
	vm.stop()
	if sha256File(t, zone) != zoneSum {
		t.Error("the refused zone disk changed")
	}
	if sha256File(t, spare) != spareSum {
		t.Error("the unmarked ZONE_SPARE disk changed")
	}
}

// TestZoneUnmarked: a ZONE_PRIMARY partition without the provisioning
// marker is left byte-identical, the status says why, the service runs.
func TestZoneUnmarked(t *testing.T) {
	t.Parallel()
	img, _ := stick{}.image(t)
	zone := zoneDisk(t, storage.ZonePrimary, false)
	sum := sha256File(t, zone)
	vm := zoneBoot(t, "zone-unmarked", t.TempDir(), img, zone)
	fail := awaitEvent(t, vm.VM, bootLimit, "the storage refusal", func(e appliance.Event) bool {
		return e.Step == "storage" && e.State == appliance.StateFail
	})
	if !regexp.MustCompile(`no provisioning marker`).MatchString(fail.Status) {
		t.Errorf("status %q does not say why", fail.Status)
	}
	awaitHealthy(t, vm.VM, bootLimit)
	vm.stop()
	if sha256File(t, zone) != sum {
		t.Error("an unmarked zone partition was written")
	}
}

// TestZonePowerCut kills QEMU (SIGKILL, no shutdown) at points of the
// provisioning and boots again on the same disk and TPM: the volume ends
// up mounted with a filesystem, never refused and never left half-made.
func TestZonePowerCut(t *testing.T) {
	t.Parallel()
	for _, point := range []string{storage.ProgressFormatted, storage.ProgressMkfs} {
		t.Run(point, func(t *testing.T) {
			img, _ := stick{}.image(t)
			zone := zoneDisk(t, storage.ZonePrimary, true)
			work := t.TempDir()
			vm := zoneBoot(t, "zone-cut-"+point, work, img, zone)
			awaitEvent(t, vm.VM, bootLimit, "provisioning "+point, func(e appliance.Event) bool {
				return e.Step == "storage" && e.Data["progress"] == point
			})
			if err := syscall.Kill(vm.Pid(), syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-vm.Done()
			vm.stop()
			head := make([]byte, 6)
			if f, err := os.Open(zone); err == nil {
				f.ReadAt(head, zonePartOffset)
				f.Close()
			}
			t.Logf("after the cut the partition starts with %q", head)

			vm = zoneBoot(t, "zone-after-cut-"+point, work, img, zone)
			awaitHealthy(t, vm.VM, bootLimit)
			ev := evidence(t, vm.VM)
			st := zoneState(t, ev)
			if st.Mount == "" || st.Reason != "" {
				t.Fatalf("after a power cut at %s: zone state %+v", point, st)
			}
			if zf := zoneFile(t, ev); zf.Visits != 1 {
				t.Errorf("visits %d, want 1", zf.Visits)
			}
			vm.stop()
			if !bytes.Equal([]byte(luksUUID(t, zone)), []byte(st.VolumeID)) {
				t.Error("evidence volume-id is not the volume's UUID")
			}
		})
	}
}
