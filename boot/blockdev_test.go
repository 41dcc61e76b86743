package boot

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// GUIDs of the test disks; sgdisk writes them, so each layout is made once.
const (
	testGUIDSda1 = "AAAAAAAA-1111-2222-3333-444444444444"
	testGUIDVda1 = "CCCCCCCC-1111-2222-3333-444444444444"
	testGUIDVda2 = "dddddddd-1111-2222-3333-444444444444"
)

func TestScanPartitions(t *testing.T) {
	m := newFakeMachine(t)
	sda := m.addDisk("sda", usbDiskPath)
	m.addPart(sda, "sda1", 1, "PARTNAME=ESP")
	m.gptImage("sda", testGUIDSda1)
	sdb := m.addDisk("sdb", usbHubDiskPath)
	m.addPart(sdb, "sdb1", 1, "PARTUUID=BBBBBBBB-1111-2222-3333-444444444444")
	vda := m.addDisk("vda", virtioDiskPath)
	m.addPart(vda, "vda1", 1)
	m.addPart(vda, "vda2", 2)
	m.gptImage("vda", testGUIDVda1, testGUIDVda2)
	nv := m.addDisk("nvme0n1", nvmeDiskPath)
	m.addPart(nv, "nvme0n1p1", 1)
	mmc := m.addDisk("mmcblk0", mmcDiskPath)
	m.addPart(mmc, "mmcblk0p1", 1)
	// Not candidates: a loop partition, a disk, an optical drive.
	loop := m.addDisk("loop0", "devices/virtual/block/%s")
	m.addPart(loop, "loop0p1", 1)
	m.addDisk("sr0", virtioDiskPath)

	parts, err := ScanPartitions(m.env(nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Partition{}
	var names []string
	for _, p := range parts {
		byName[p.Name] = p
		names = append(names, p.Name)
	}
	if got, want := strings.Join(names, ","), "mmcblk0p1,nvme0n1p1,sda1,sdb1,vda1,vda2"; got != want {
		t.Fatalf("candidates %s, want %s", got, want)
	}
	for _, tc := range []struct {
		name, disk, uuid, usb string
		tr                    Transport
	}{
		{"sda1", "sda", "aaaaaaaa-1111-2222-3333-444444444444", "2-1", TransportUSB},
		{"sdb1", "sdb", "bbbbbbbb-1111-2222-3333-444444444444", "1-3.2", TransportUSB},
		{"vda2", "vda", "dddddddd-1111-2222-3333-444444444444", "", TransportVirtio},
		{"nvme0n1p1", "nvme0n1", "", "", TransportNVMe},
		{"mmcblk0p1", "mmcblk0", "", "", TransportOther},
	} {
		p := byName[tc.name]
		if p.Disk != tc.disk || p.PartUUID != tc.uuid || p.Transport != tc.tr || p.USBDevice != tc.usb {
			t.Errorf("%s = disk %q uuid %q transport %q usb %q; want %q %q %q %q",
				tc.name, p.Disk, p.PartUUID, p.Transport, p.USBDevice, tc.disk, tc.uuid, tc.tr, tc.usb)
		}
	}
	if p := byName["sda1"]; p.PartName != "ESP" || p.PartN != 1 || p.DevName != "sda1" {
		t.Errorf("sda1 uevent facts: %+v", p)
	}
	if got, want := byName["sda1"].DevPath, "/"+filepath.Join(strings.ReplaceAll(usbDiskPath, "%s", "sda"), "sda1"); got != want {
		t.Errorf("DevPath %q, want %q", got, want)
	}
	if byName["nvme0n1p1"].PartUUIDErr == nil {
		t.Error("a disk without a readable partition table must say why PARTUUID is empty")
	}
}

func TestScanPartitionsNoSysfs(t *testing.T) {
	env := Env{SysRoot: filepath.Join(t.TempDir(), "missing")}
	if _, err := ScanPartitions(env); !errors.Is(err, ErrSysfs) {
		t.Fatal("want ErrSysfs")
	}
}
