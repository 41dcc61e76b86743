package boot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// espMachine is a USB stick (sda1) and a virtio disk (vda1, vda2).
func espMachine(t *testing.T) (*fakeMachine, *fakeMounter) {
	m := newFakeMachine(t)
	sda := m.addDisk("sda", usbDiskPath)
	m.addPart(sda, "sda1", 1)
	m.gptImage("sda", testGUIDSda1)
	vda := m.addDisk("vda", virtioDiskPath)
	m.addPart(vda, "vda1", 1)
	m.addPart(vda, "vda2", 2)
	m.gptImage("vda", testGUIDVda1, testGUIDVda2)
	return m, newFakeMounter()
}

func (m *fakeMachine) node(name string) string { return filepath.Join(m.dev, name) }

func (m *fakeMachine) setEFIVar(t *testing.T, name string, b []byte) {
	mustMkdir(t, filepath.Join(m.sys, "firmware", "efi", "efivars"))
	p := filepath.Join(m.sys, "firmware", "efi", "efivars", name+"-"+loaderVendorGUID)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func fastSpec(rounds int) ESPSpec {
	s := DefaultESPSpec()
	s.Rounds, s.RoundSeconds = rounds, 0
	return s
}

func TestFindESP(t *testing.T) {
	nonESP := map[string]string{"EFI/Boot/BootX64.efi": "other loader"}
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, m *fakeMachine, fm *fakeMounter)
		wantDev string // partition name of the ESP, "" when an error is wanted
		wantErr error
		// neverMounted partitions must not even be mounted.
		neverMounted []string
		wantNote     string
	}{
		{name: "usb stick among other disks", wantDev: "sda1", wantNote: "did not report",
			setup: func(t *testing.T, m *fakeMachine, fm *fakeMounter) {
				fm.fs[m.node("sda1")] = espFiles(nil)
				fm.fs[m.node("vda1")] = nonESP
			}},
		{name: "marker with CRLF", wantDev: "sda1",
			setup: func(t *testing.T, m *fakeMachine, fm *fakeMounter) {
				fm.fs[m.node("sda1")] = espFiles(map[string]string{"LAPEE.MARKER": "lapee-esp-v1\r\nmore"})
			}},
		{name: "marker wrong line", wantErr: ErrNoESP,
			setup: func(t *testing.T, m *fakeMachine, fm *fakeMounter) {
				fm.fs[m.node("sda1")] = espFiles(map[string]string{"LAPEE.MARKER": "lapee-esp-v2\n"})
			}},
		{name: "marker only on a later line", wantErr: ErrNoESP,
			setup: func(t *testing.T, m *fakeMachine, fm *fakeMounter) {
				fm.fs[m.node("sda1")] = espFiles(map[string]string{"LAPEE.MARKER": "\nlapee-esp-v1\n"})
			}},
		{name: "loader missing", wantErr: ErrNoESP,
			setup: func(t *testing.T, m *fakeMachine, fm *fakeMounter) {
				fm.fs[m.node("sda1")] = map[string]string{"LAPEE.MARKER": "lapee-esp-v1\n"}
			}},
		{name: "two ESPs halt", wantErr: ErrAmbiguousESP,
			setup: func(t *testing.T, m *fakeMachine, fm *fakeMounter) {
				fm.fs[m.node("sda1")] = espFiles(nil)
				fm.fs[m.node("vda1")] = espFiles(nil)
			}},
		{name: "firmware binds to vda1", wantDev: "vda1", neverMounted: []string{"sda1", "vda2"},
			setup: func(t *testing.T, m *fakeMachine, fm *fakeMounter) {
				fm.fs[m.node("sda1")] = espFiles(nil)
				fm.fs[m.node("vda1")] = espFiles(nil)
				m.setEFIVar(t, StubDevicePartUUIDVar, efiVarBytes(t, testGUIDVda1, true))
			}},
		{name: "firmware binds to a partition that is not here", wantErr: ErrNoESP,
			neverMounted: []string{"sda1", "vda1", "vda2"},
			setup: func(t *testing.T, m *fakeMachine, fm *fakeMounter) {
				fm.fs[m.node("sda1")] = espFiles(nil)
				m.setEFIVar(t, LoaderDevicePartUUIDVar, efiVarBytes(t, "12345678-1234-1234-1234-123456789abc", true))
			}},
		{name: "malformed firmware var", wantDev: "sda1", wantNote: "unusable",
			setup: func(t *testing.T, m *fakeMachine, fm *fakeMounter) {
				fm.fs[m.node("sda1")] = espFiles(nil)
				m.setEFIVar(t, StubDevicePartUUIDVar, efiVarBytes(t, "garbage", true))
			}},
		{name: "stray candidate cannot be unmounted", wantErr: ErrStillMounted,
			setup: func(t *testing.T, m *fakeMachine, fm *fakeMounter) {
				fm.fs[m.node("vda1")] = nonESP
				mp := filepath.Join(m.mnt, "vda1")
				fm.unmountErrs[mp] = []error{unix.EBUSY, unix.EBUSY}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, fm := espMachine(t)
			tc.setup(t, m, fm)
			var log []string
			esp, err := FindESP(context.Background(), m.env(fm, nil), fastSpec(2), func(s string) { log = append(log, s) })
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if tc.wantErr != ErrStillMounted {
					if left := fm.mountedTargets(); len(left) != 0 {
						t.Errorf("still mounted after failure: %v", left)
					}
				}
			} else {
				if err != nil {
					t.Fatalf("FindESP: %v\n%s", err, strings.Join(log, "\n"))
				}
				if esp.Device != m.node(tc.wantDev) {
					t.Fatalf("ESP is %s, want %s", esp.Device, tc.wantDev)
				}
				if left := fm.mountedTargets(); len(left) != 1 || left[0] != esp.MountPoint {
					t.Errorf("mounted %v, want only %s", left, esp.MountPoint)
				}
				if _, err := os.Stat(filepath.Join(esp.MountPoint, "LAPEE.MARKER")); err != nil {
					t.Errorf("ESP not readable at its mount point: %v", err)
				}
				if !strings.Contains(esp.FirmwareNote, tc.wantNote) {
					t.Errorf("FirmwareNote %q, want it to mention %q", esp.FirmwareNote, tc.wantNote)
				}
			}
			for _, c := range fm.mounts {
				if c.fstype != "vfat" || c.flags != unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_NOATIME {
					t.Errorf("mount %s as %s flags %#x; want vfat ro,nosuid,nodev,noexec,noatime", c.source, c.fstype, c.flags)
				}
			}
			for _, p := range tc.neverMounted {
				if slices.Contains(fm.mountedSources(), m.node(p)) {
					t.Errorf("%s was mounted although the firmware excluded it", p)
				}
			}
		})
	}
}

func TestFindESPFacts(t *testing.T) {
	m, fm := espMachine(t)
	fm.fs[m.node("sda1")] = espFiles(nil)
	m.setEFIVar(t, LoaderDevicePartUUIDVar, efiVarBytes(t, testGUIDSda1, true))
	m.setEFIVar(t, LoaderImageIdentVar, efiVarBytes(t, `\EFI\Boot\BootX64.efi`, true))
	esp, err := FindESP(context.Background(), m.env(fm, nil), fastSpec(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := ESP{
		Device: m.node("sda1"), Disk: "sda",
		DevPath:          "/" + filepath.Join(strings.ReplaceAll(usbDiskPath, "%s", "sda"), "sda1"),
		PartUUID:         strings.ToLower(testGUIDSda1),
		FirmwarePartUUID: strings.ToLower(testGUIDSda1), FirmwareSource: LoaderDevicePartUUIDVar,
		FirmwareImageID: `\EFI\Boot\BootX64.efi`,
		MountPoint:      filepath.Join(m.mnt, "sda1"), Transport: "usb", USBDevice: "2-1",
	}
	if *esp != want {
		t.Fatalf("ESP\n got %+v\nwant %+v", *esp, want)
	}
}

// A stick plugged in late ends the wait between rounds at once: with an
// hour between rounds, only the uevent can make this test finish.
func TestFindESPLateStick(t *testing.T) {
	m := newFakeMachine(t)
	vda := m.addDisk("vda", virtioDiskPath)
	m.addPart(vda, "vda1", 1)
	fm := newFakeMounter()
	fm.fs[m.node("sda1")] = espFiles(nil)
	ue := &fakeUevents{steps: []func() Uevent{
		func() Uevent {
			sda := m.addDisk("sda", usbDiskPath)
			m.addPart(sda, "sda1", 1)
			m.gptImage("sda", testGUIDSda1)
			return Uevent{Action: "add", DevPath: "/devices/x/block/sda/sda1", Vars: map[string]string{"SUBSYSTEM": "block"}}
		},
	}}
	spec := DefaultESPSpec()
	spec.RoundSeconds = 3600
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	esp, err := FindESP(ctx, m.env(fm, ue), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if esp.Disk != "sda" || len(ue.calls) != 1 || ue.calls[0] != "a new block device" {
		t.Fatalf("ESP %+v after waits %q", esp, ue.calls)
	}
}

func TestFindESPCancelled(t *testing.T) {
	m, fm := espMachine(t)
	spec := DefaultESPSpec()
	spec.RoundSeconds = 3600
	ctx, cancel := context.WithCancel(context.Background())
	ue := &fakeUevents{steps: []func() Uevent{func() Uevent { cancel(); return Uevent{} }}}
	_, err := FindESP(ctx, m.env(fm, ue), spec, nil)
	if !errors.Is(err, ErrNoESP) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrNoESP wrapping context.Canceled", err)
	}
}
