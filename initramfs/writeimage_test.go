package initramfs

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFakeHost builds a fake /sys, /dev and /proc with:
//   - sdb: a USB stick (removable=1) with partition sdb1 (8:17)
//   - sdc: a USB SSD (removable=0) on the USB bus
//   - sda: an internal SATA disk, unmounted
//   - nvme0n1: an internal disk with nvme0n1p1 mounted at /
type writeFakeHost struct {
	root string
	b    BlockDevices
	dev  map[string]fs.FileMode
}

func newWriteFakeHost(t *testing.T) *writeFakeHost {
	t.Helper()
	root := t.TempDir()
	h := &writeFakeHost{root: root, dev: map[string]fs.FileMode{}}
	sys := filepath.Join(root, "sys")
	disk := func(devPath, name, devno, removable, size, vendor, model string, parts map[string]string) {
		dir := filepath.Join(sys, devPath, "block", name)
		h.write(filepath.Join(dir, "removable"), removable+"\n")
		h.write(filepath.Join(dir, "size"), size+"\n")
		h.write(filepath.Join(dir, "dev"), devno+"\n")
		os.MkdirAll(filepath.Join(dir, "holders"), 0o755)
		h.write(filepath.Join(sys, devPath, "vendor"), vendor+"\n")
		h.write(filepath.Join(sys, devPath, "model"), model+"\n")
		os.Symlink(filepath.Join(sys, devPath), filepath.Join(dir, "device"))
		h.link(filepath.Join(sys, "class", "block", name), dir)
		h.dev[filepath.Join(root, "dev", name)] = fs.ModeDevice
		h.write(filepath.Join(root, "dev", name), "")
		for p, pdev := range parts {
			pdir := filepath.Join(dir, p)
			h.write(filepath.Join(pdir, "partition"), "1\n")
			h.write(filepath.Join(pdir, "dev"), pdev+"\n")
			os.MkdirAll(filepath.Join(pdir, "holders"), 0o755)
			h.link(filepath.Join(sys, "class", "block", p), pdir)
			h.dev[filepath.Join(root, "dev", p)] = fs.ModeDevice
			h.write(filepath.Join(root, "dev", p), "")
		}
	}
	disk("devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0", "sdb", "8:16", "1", "30310400",
		"Foo", "Stick  ", map[string]string{"sdb1": "8:17"})
	disk("devices/pci0000:00/0000:00:14.0/usb3/3-2/3-2:1.0/host7/target7:0:0/7:0:0:0", "sdc", "8:32", "0", "1000000", "Bar", "SSD", nil)
	disk("devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0", "sda", "8:0", "0", "1000000", "ATA", "Disk", nil)
	disk("devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0", "nvme0n1", "259:0", "0", "2000000000", "", "Samsung",
		map[string]string{"nvme0n1p1": "259:1"})
	h.link(filepath.Join(root, "dev", "disk", "by-id", "usb-Foo_Stick"), filepath.Join(root, "dev", "sdb"))
	h.write(filepath.Join(root, "dev", "console"), "")
	h.dev[filepath.Join(root, "dev", "console")] = fs.ModeDevice | fs.ModeCharDevice
	h.write(filepath.Join(root, "proc", "mountinfo"),
		"22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw\n"+
			"23 22 0:21 / /proc rw shared:2 - proc proc rw\n")
	h.write(filepath.Join(root, "proc", "swaps"), "Filename\tType\tSize\tUsed\tPriority\n")
	h.b = BlockDevices{
		SysRoot: sys, DevRoot: filepath.Join(root, "dev"),
		MountInfo: filepath.Join(root, "proc", "mountinfo"), Swaps: filepath.Join(root, "proc", "swaps"),
		Mode: func(p string) (fs.FileMode, error) {
			if _, err := os.Stat(p); err != nil {
				return 0, err
			}
			return h.dev[p], nil
		},
	}
	return h
}

func (h *writeFakeHost) write(p, s string) {
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		panic(err)
	}
}

func (h *writeFakeHost) link(p, target string) {
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.Symlink(target, p); err != nil {
		panic(err)
	}
}

func (h *writeFakeHost) appendTo(p, s string) {
	b, _ := os.ReadFile(p)
	h.write(p, string(b)+s)
}

func TestCheckWriteTargetAccepts(t *testing.T) {
	h := newWriteFakeHost(t)
	cases := []struct{ dev, name, model string }{
		{"/dev/sdb", "sdb", "Foo Stick"},
		{"sdb", "sdb", "Foo Stick"},
		{"/dev/disk/by-id/usb-Foo_Stick", "sdb", "Foo Stick"},
		{"/dev/sdc", "sdc", "Bar SSD"}, // removable=0 but on USB
	}
	for _, c := range cases {
		dev := c.dev
		if strings.HasPrefix(dev, "/dev/") {
			dev = filepath.Join(h.root, dev)
		}
		tg, err := h.b.CheckWriteTarget(dev)
		if err != nil {
			t.Errorf("%s: %v", c.dev, err)
			continue
		}
		if tg.Name != c.name || tg.Model != c.model || tg.Path != filepath.Join(h.root, "dev", c.name) {
			t.Errorf("%s: %+v", c.dev, tg)
		}
	}
	tg, _ := h.b.CheckWriteTarget("sdb")
	if tg.Size != 30310400*512 || !tg.USB || !tg.Remove {
		t.Errorf("sdb: %+v", tg)
	}
}

func TestCheckWriteTargetRefusals(t *testing.T) {
	cases := []struct {
		name  string
		dev   string
		fault func(h *writeFakeHost)
		want  error
	}{
		{"partition", "sdb1", nil, ErrIsPartition},
		{"internal disk", "nvme0n1", nil, ErrSystemDisk},
		{"internal unmounted disk", "nvme0n1", func(h *writeFakeHost) {
			h.write(h.b.MountInfo, "23 1 0:21 / /proc rw - proc proc rw\n")
		}, ErrNotRemovable},
		{"character device", "console", func(h *writeFakeHost) {
			h.link(filepath.Join(h.b.SysRoot, "class", "block", "console"), h.b.SysRoot)
		}, ErrNotBlockDevice},
		{"no sysfs entry", "sdz", func(h *writeFakeHost) { h.write(filepath.Join(h.b.DevRoot, "sdz"), "") }, ErrNotBlockDevice},
		{"missing node", "sdy", nil, ErrNotBlockDevice},
		{"outside /dev", "/etc/passwd", nil, ErrNotBlockDevice},
		{"not a device node", "sdb", func(h *writeFakeHost) { h.dev[filepath.Join(h.b.DevRoot, "sdb")] = 0 }, ErrNotBlockDevice},
		{"no medium", "sdb", func(h *writeFakeHost) {
			h.write(filepath.Join(h.b.SysRoot, "class", "block", "sdb", "size"), "0\n")
		}, ErrNoMedium},
		{"SATA disk", "sda", nil, ErrNotRemovable},
		{"partition mounted", "sdb", func(h *writeFakeHost) {
			h.appendTo(h.b.MountInfo, "40 22 8:17 / /media/op\\040stick rw - vfat /dev/sdb1 rw\n")
		}, ErrMounted},
		{"mounted by source only", "sdb", func(h *writeFakeHost) {
			h.appendTo(h.b.MountInfo, "40 22 0:45 / /mnt rw - btrfs /dev/sdb1 rw\n")
		}, ErrMounted},
		{"whole disk mounted", "sdc", func(h *writeFakeHost) {
			h.appendTo(h.b.MountInfo, "40 22 8:32 / /mnt rw - ext4 /dev/sdc rw\n")
		}, ErrMounted},
		{"holds /boot", "sdb", func(h *writeFakeHost) {
			h.appendTo(h.b.MountInfo, "40 22 8:17 / /boot rw - vfat /dev/sdb1 rw\n")
		}, ErrSystemDisk},
		{"held by dm", "sdb", func(h *writeFakeHost) {
			os.MkdirAll(filepath.Join(h.b.SysRoot, "class", "block", "sdb1", "holders", "dm-0"), 0o755)
		}, ErrDiskInUse},
		{"swap", "sdb", func(h *writeFakeHost) { h.appendTo(h.b.Swaps, "/dev/sdb1 partition 1024 0 -2\n") }, ErrDiskInUse},
		{"mount table unreadable", "sdb", func(h *writeFakeHost) { os.Remove(h.b.MountInfo) }, ErrCannotCheck},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newWriteFakeHost(t)
			if c.fault != nil {
				c.fault(h)
			}
			dev := c.dev
			if dev == "/etc/passwd" {
				dev = filepath.Join(h.root, "etc", "passwd")
				h.write(dev, "")
			}
			if _, err := h.b.CheckWriteTarget(dev); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestWriteImage(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "in.img")
	data := imageTestUKI(7, 9<<20+77)
	os.WriteFile(img, data, 0o644)
	dev := filepath.Join(dir, "fake-sdb")
	os.WriteFile(dev, nil, 0o644)
	var progress bytes.Buffer
	if err := WriteImage(img, WriteTarget{Path: dev, Size: 16 << 20}, &progress); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dev); !bytes.Equal(got, data) {
		t.Error("device bytes differ from the image")
	}
	if !strings.Contains(progress.String(), "(100%)") || !strings.Contains(progress.String(), "syncing") {
		t.Errorf("progress:\n%s", progress.String())
	}
	if err := WriteImage(img, WriteTarget{Path: dev, Size: 1 << 20}, nil); !errors.Is(err, ErrDiskTooSmall) {
		t.Errorf("small disk: %v", err)
	}
}

func FuzzParseMountInfoLine(f *testing.F) {
	f.Add("22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw")
	f.Add(`40 22 8:17 / /media/a\040b rw - vfat /dev/sdb1 rw`)
	f.Fuzz(func(t *testing.T, line string) {
		m, ok := parseMountInfoLine(line)
		if ok && (m.MajorMinor == "" || m.FSType == "") {
			t.Fatalf("accepted with empty fields: %+v", m)
		}
	})
}
