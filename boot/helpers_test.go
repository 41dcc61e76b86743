package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeMachine is a fake /sys, /dev and /proc under one temporary directory.
type fakeMachine struct {
	t                         *testing.T
	root, sys, dev, proc, mnt string
}

func newFakeMachine(t *testing.T) *fakeMachine {
	t.Helper()
	r := t.TempDir()
	m := &fakeMachine{t: t, root: r, sys: filepath.Join(r, "sys"), dev: filepath.Join(r, "dev"),
		proc: filepath.Join(r, "proc"), mnt: filepath.Join(r, "run", "esp")}
	for _, d := range []string{m.sys, m.dev, m.proc, filepath.Join(m.sys, "class", "block")} {
		mustMkdir(t, d)
	}
	return m
}

func (m *fakeMachine) env(mnt Mounter, ue UeventSource) Env {
	return Env{SysRoot: m.sys, DevRoot: m.dev, ProcRoot: m.proc, Mounter: mnt,
		Uevents: ue, Disk: &fakeDisk{}, MountBase: m.mnt}
}

func mustMkdir(t *testing.T, d string) {
	t.Helper()
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, p, s string) {
	t.Helper()
	mustMkdir(t, filepath.Dir(p))
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readString(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Device paths (the disk's directory, relative to /sys) of realistic
// machines: a USB stick behind xhci, a virtio-blk disk, an NVMe namespace,
// an SD card on a PCI host.
const (
	usbDiskPath    = "devices/pci0000:00/0000:00:04.0/usb2/2-1/2-1:1.0/host0/target0:0:0/0:0:0:0/block/%s"
	usbHubDiskPath = "devices/pci0000:00/0000:00:14.0/usb1/1-3/1-3.2/1-3.2:1.0/host1/target1:0:0/1:0:0:0/block/%s"
	virtioDiskPath = "devices/pci0000:00/0000:00:05.0/virtio2/block/%s"
	nvmeDiskPath   = "devices/pci0000:00/0000:00:06.0/nvme/nvme0/%s"
	mmcDiskPath    = "devices/pci0000:00/0000:00:1a.0/mmc_host/mmc0/mmc0:0001/block/%s"
)

// addDisk creates the disk's sysfs directory and class link.
func (m *fakeMachine) addDisk(disk, pathFmt string) string {
	m.t.Helper()
	dir := filepath.Join(m.sys, fmt.Sprintf(pathFmt, disk))
	mustWrite(m.t, filepath.Join(dir, "uevent"), fmt.Sprintf("MAJOR=8\nMINOR=0\nDEVNAME=%s\nDEVTYPE=disk\n", disk))
	mustWrite(m.t, filepath.Join(dir, "queue", "logical_block_size"), "512\n")
	m.link(disk, dir)
	return dir
}

// addPart creates a partition under a disk added with addDisk; extra uevent
// lines (e.g. PARTNAME=) are appended.
func (m *fakeMachine) addPart(diskDir, name string, partN int, extra ...string) {
	m.t.Helper()
	dir := filepath.Join(diskDir, name)
	ue := fmt.Sprintf("MAJOR=8\nMINOR=%d\nDEVNAME=%s\nDEVTYPE=partition\nPARTN=%d\n", partN, name, partN)
	for _, e := range extra {
		ue += e + "\n"
	}
	mustWrite(m.t, filepath.Join(dir, "uevent"), ue)
	mustWrite(m.t, filepath.Join(dir, "partition"), fmt.Sprintf("%d\n", partN))
	m.link(name, dir)
}

func (m *fakeMachine) link(name, target string) {
	m.t.Helper()
	classDir := filepath.Join(m.sys, "class", "block")
	rel, err := filepath.Rel(classDir, target)
	if err != nil {
		m.t.Fatal(err)
	}
	if err := os.Symlink(rel, filepath.Join(classDir, name)); err != nil {
		m.t.Fatal(err)
	}
}

// gptImage writes a disk image at <dev>/<disk> with sgdisk: one partition
// per GUID given (1 MiB each), so PARTUUIDs come from an independent tool.
func (m *fakeMachine) gptImage(disk string, guids ...string) {
	m.t.Helper()
	p := filepath.Join(m.dev, disk)
	writeGPT(m.t, p, guids...)
}

// gptCache holds images by GUID list: sgdisk pauses about a second per run
// (it syncs and waits for the kernel), so each layout is made once.
var gptCache sync.Map

func writeGPT(t *testing.T, p string, guids ...string) {
	t.Helper()
	key := strings.Join(guids, ",")
	if img, ok := gptCache.Load(key); ok {
		if err := os.WriteFile(p, img.([]byte), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := os.WriteFile(p, make([]byte, (2+len(guids))<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-o"}
	for i, g := range guids {
		n := i + 1
		args = append(args, fmt.Sprintf("-n%d:0:+1M", n), fmt.Sprintf("-t%d:ef00", n), fmt.Sprintf("-u%d:%s", n, g))
	}
	args = append(args, p)
	if out, err := exec.Command("sgdisk", args...).CombinedOutput(); err != nil {
		t.Fatalf("sgdisk %v: %v\n%s", args, err, out)
	}
	img, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	gptCache.Store(key, img)
}

// fakeMounter records mounts. A mount of a source listed in fs "mounts" that
// file tree at the target; other sources fail with EINVAL, like a non-vfat
// partition. unmountErrs queues errors returned by Unmount per target.
type fakeMounter struct {
	mu          sync.Mutex
	fs          map[string]map[string]string // source -> path -> content
	mounted     map[string]string            // target -> source
	mounts      []mountCall
	unmounts    []string
	unmountErrs map[string][]error
}

type mountCall struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}

func newFakeMounter() *fakeMounter {
	return &fakeMounter{fs: map[string]map[string]string{}, mounted: map[string]string{},
		unmountErrs: map[string][]error{}}
}

func (f *fakeMounter) Mount(source, target, fstype string, flags uintptr, data string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mounts = append(f.mounts, mountCall{source, target, fstype, flags, data})
	files, ok := f.fs[source]
	if !ok {
		return unix.EINVAL
	}
	if _, busy := f.mounted[target]; busy {
		return unix.EBUSY
	}
	for p, c := range files {
		full := filepath.Join(target, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			return err
		}
	}
	f.mounted[target] = source
	return nil
}

func (f *fakeMounter) Unmount(target string, flags int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unmounts = append(f.unmounts, target)
	if q := f.unmountErrs[target]; len(q) > 0 {
		f.unmountErrs[target] = q[1:]
		if q[0] != nil {
			return q[0]
		}
	}
	if _, ok := f.mounted[target]; !ok {
		return unix.EINVAL
	}
	delete(f.mounted, target)
	// "Unmounting" empties the directory again.
	entries, _ := os.ReadDir(target)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(target, e.Name()))
	}
	return nil
}

func (f *fakeMounter) mountedTargets() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for t := range f.mounted {
		out = append(out, t)
	}
	return out
}

func (f *fakeMounter) mountedSources() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, m := range f.mounts {
		out = append(out, m.source)
	}
	return out
}

// espFiles is a valid ESP per DefaultESPSpec plus extra files.
func espFiles(extra map[string]string) map[string]string {
	files := map[string]string{
		"EFI/Boot/BootX64.efi": "MZ fake UKI",
		"LAPEE.MARKER":         "lapee-esp-v1\n",
	}
	for k, v := range extra {
		files[k] = v
	}
	return files
}

// fakeUevents delivers scripted uevents: each WaitFor call runs the next
// step (which may change the fake tree) and reports its event; with no steps
// left it blocks until ctx ends, like a quiet kernel.
type fakeUevents struct {
	mu    sync.Mutex
	steps []func() Uevent
	calls []string
}

func (f *fakeUevents) WaitFor(ctx context.Context, name string, match func(Uevent) bool) error {
	f.mu.Lock()
	f.calls = append(f.calls, name)
	var step func() Uevent
	if len(f.steps) > 0 {
		step, f.steps = f.steps[0], f.steps[1:]
	}
	f.mu.Unlock()
	if step != nil {
		if u := step(); match(u) {
			return nil
		}
	}
	<-ctx.Done()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w for %s", ErrWaitTimeout, name)
	}
	return ctx.Err()
}

// fakeDisk records DiskControl calls in order.
type fakeDisk struct {
	mu       sync.Mutex
	calls    []string
	roErr    error
	readOnly []string
}

func (d *fakeDisk) Sync() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, "sync")
}

func (d *fakeDisk) SetReadOnly(dev string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, "ro "+dev)
	if d.roErr != nil {
		return d.roErr
	}
	d.readOnly = append(d.readOnly, dev)
	return nil
}

func (d *fakeDisk) log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.calls, ";")
}
