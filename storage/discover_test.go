package storage

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSysfs builds root/sys with disks and partitions laid out like the
// kernel's: class symlinks into devices/.../<disk>/<part>.
type fakeSysfs struct {
	t    *testing.T
	root string
}

func newFakeSysfs(t *testing.T) *fakeSysfs {
	root := t.TempDir()
	for _, d := range []string{"sys/class/block", "sys/block", "sys/devices/virtual/block"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &fakeSysfs{t, root}
}

func (f *fakeSysfs) write(path, content string) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.root, path), []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeSysfs) disk(name string) {
	f.t.Helper()
	dev := filepath.Join("sys/devices/virtual/block", name)
	if err := os.MkdirAll(filepath.Join(f.root, dev), 0o755); err != nil {
		f.t.Fatal(err)
	}
	f.write(filepath.Join(dev, "uevent"), "DEVNAME="+name+"\nDEVTYPE=disk\n")
	f.write(filepath.Join(dev, "size"), "2097152\n")
	for _, link := range []string{"sys/class/block/" + name, "sys/block/" + name} {
		if err := os.Symlink(filepath.Join("../../devices/virtual/block", name), filepath.Join(f.root, link)); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *fakeSysfs) partition(disk, name, uevent string) {
	f.t.Helper()
	dev := filepath.Join("sys/devices/virtual/block", disk, name)
	if err := os.MkdirAll(filepath.Join(f.root, dev), 0o755); err != nil {
		f.t.Fatal(err)
	}
	f.write(filepath.Join(dev, "uevent"), uevent)
	f.write(filepath.Join(dev, "size"), "204800\n")
	f.write(filepath.Join(dev, "partition"), "1\n")
	if err := os.Symlink(filepath.Join("../../devices/virtual/block", disk, name), filepath.Join(f.root, "sys/class/block", name)); err != nil {
		f.t.Fatal(err)
	}
}

func ueventFor(name, partName string) string {
	return "MAJOR=254\nMINOR=17\nDEVNAME=" + name + "\nDEVTYPE=partition\nPARTN=1\nPARTNAME=" + partName + "\n"
}

func TestDiscover(t *testing.T) {
	fs := newFakeSysfs(t)
	for _, d := range []string{"sda", "vdb", "vdc", "vdd"} {
		fs.disk(d)
	}
	fs.partition("sda", "sda1", ueventFor("sda1", "ESP"))
	fs.partition("sda", "sda2", ueventFor("sda2", "ZONE_PRIMARY")) // on the boot medium
	fs.partition("vdb", "vdb1", ueventFor("vdb1", "ZONE_PRIMARY"))
	fs.partition("vdc", "vdc1", ueventFor("vdc1", "ZONE_bad.name"))
	fs.partition("vdd", "vdd1", ueventFor("vdd1", "Linux filesystem"))
	known, err := SnapshotDisks(fs.root)
	if err != nil {
		t.Fatal(err)
	}
	// A disk plugged in after the snapshot.
	fs.disk("sde")
	fs.partition("sde", "sde1", ueventFor("sde1", "ZONE_abc"))

	d, err := Discover(fs.root, DiscoverOptions{BootDisk: "sda", Known: known})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Zones) != 1 || d.Zones[0].Name != "vdb1" || d.Zones[0].Disk != "vdb" ||
		d.Zones[0].DevPath != "/dev/vdb1" || d.Zones[0].Size != 204800*512 {
		t.Fatalf("zones %+v", d.Zones)
	}
	refused := map[string]error{}
	for _, r := range d.Refused {
		refused[r.Partition.Name] = r.Err
	}
	for name, want := range map[string]error{"sda2": ErrBootDisk, "vdc1": ErrZoneName, "sde1": ErrLateDisk} {
		if !errors.Is(refused[name], want) {
			t.Errorf("%s refused with %v, want %v", name, refused[name], want)
		}
	}
	if len(refused) != 3 {
		t.Errorf("refused %v", refused)
	}

	if _, err := Discover(fs.root, DiscoverOptions{}); !errors.Is(err, ErrNoDiskSnapshot) {
		t.Fatalf("without snapshot: %v", err)
	}
}

func TestDiscoverMalformedSysfs(t *testing.T) {
	for _, tc := range []struct{ name, uevent string }{
		{"duplicate PARTNAME", ueventFor("vdb1", "ZONE_PRIMARY") + "PARTNAME=ZONE_abc\n"},
		{"line without =", "DEVNAME=vdb1\nPARTNAME\n"},
		{"DEVNAME escapes /dev", "DEVNAME=../sda\nPARTNAME=ZONE_PRIMARY\n"},
		{"oversized line", "PARTNAME=ZONE_PRIMARY\nX=" + strings.Repeat("x", 5000) + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFakeSysfs(t)
			fs.disk("vdb")
			fs.partition("vdb", "vdb1", tc.uevent)
			if _, err := Discover(fs.root, DiscoverOptions{Known: DiskSet{"vdb": true}}); !errors.Is(err, ErrSysfs) {
				t.Fatalf("got %v, want ErrSysfs", err)
			}
		})
	}
}

func FuzzParseUevent(f *testing.F) {
	f.Add([]byte(ueventFor("vdb1", "ZONE_PRIMARY")))
	f.Add([]byte("A=1\nA=2\n"))
	f.Add([]byte("=x\n\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := ParseUevent(strings.NewReader(string(b)))
		if err != nil {
			if !errors.Is(err, ErrSysfs) {
				t.Fatalf("unclassified: %v", err)
			}
			return
		}
		for k := range env {
			if k == "" || strings.ContainsAny(k, "=\n") {
				t.Fatalf("bad key %q", k)
			}
		}
	})
}

func FuzzSelect(f *testing.F) {
	f.Add("ZONE_PRIMARY", "ZONE_abc", "abcdef")
	f.Add("ZONE_ab", "ZONE_ab", "abc")
	f.Fuzz(func(t *testing.T, a, b, ring string) {
		parts := []Partition{part("vdb1", a), part("vdc1", b)}
		p, err := Select(parts, ring)
		if err != nil {
			return
		}
		if ValidateZoneName(p.PartName) != nil {
			t.Fatalf("selected invalid name %q", p.PartName)
		}
		if p.PartName != ZonePrimary && !strings.HasPrefix(ring, p.PartName[len(ZonePrefix):]) {
			t.Fatalf("selected %q for ring %q", p.PartName, ring)
		}
	})
}
