package initramfs

// Writing a disk image to a USB stick, with the refusals that keep an
// operator from overwriting the wrong disk: only whole, removable (or
// USB-attached), unmounted, unused block devices are accepted.
//
// Removability: many USB sticks report removable=1, but USB SSDs and some
// sticks report 0. A disk with removable=0 is accepted only when its sysfs
// device path runs through a USB controller (".../usbN/..."); internal
// SATA/NVMe disks never do. A disk that is mounted, swapped on, or held by
// device-mapper/md (LVM, dm-crypt, RAID) is refused whatever it is.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Refusals of a write target.
var (
	ErrNotBlockDevice = errors.New("write-image: not a block device")
	ErrIsPartition    = errors.New("write-image: is a partition, give the whole disk")
	ErrNotRemovable   = errors.New("write-image: not a removable or USB disk")
	ErrMounted        = errors.New("write-image: disk is mounted")
	ErrSystemDisk     = errors.New("write-image: disk holds the running system (/ or /boot)")
	ErrDiskInUse      = errors.New("write-image: disk is in use (holder or swap)")
	ErrNoMedium       = errors.New("write-image: disk has no medium (size 0)")
	ErrDiskTooSmall   = errors.New("write-image: disk is smaller than the image")
	ErrCannotCheck    = errors.New("write-image: cannot check whether the disk is in use")
)

// BlockDevices is where the write-target checks look: sysfs, /dev, the
// mount table and the swap list, all replaceable for tests.
type BlockDevices struct {
	SysRoot   string // "/sys"
	DevRoot   string // "/dev"
	MountInfo string // "/proc/self/mountinfo"
	Swaps     string // "/proc/swaps"
	// Mode returns the file mode of a /dev node (os.Stat in production).
	Mode func(path string) (fs.FileMode, error)
}

// HostBlockDevices are the running system's.
func HostBlockDevices() BlockDevices {
	return BlockDevices{
		SysRoot: "/sys", DevRoot: "/dev", MountInfo: "/proc/self/mountinfo", Swaps: "/proc/swaps",
		Mode: func(p string) (fs.FileMode, error) {
			fi, err := os.Stat(p)
			if err != nil {
				return 0, err
			}
			return fi.Mode(), nil
		},
	}
}

// WriteTarget describes a disk that passed the checks.
type WriteTarget struct {
	Name   string // kernel name, e.g. sdb
	Path   string // /dev node
	Model  string // vendor and model from sysfs, may be empty
	Size   int64  // bytes
	USB    bool
	Remove bool // removable=1
}

func (t WriteTarget) String() string {
	model := t.Model
	if model == "" {
		model = "unknown model"
	}
	return fmt.Sprintf("%s: %s, %.1f GiB", t.Path, model, float64(t.Size)/(1<<30))
}

// CheckWriteTarget resolves dev (a /dev path, a /dev/disk/by-* link or a
// bare kernel name) and refuses anything but a whole, removable or
// USB-attached, unused disk.
func (b BlockDevices) CheckWriteTarget(dev string) (WriteTarget, error) {
	name, path, err := b.resolve(dev)
	if err != nil {
		return WriteTarget{}, err
	}
	sysBlock := filepath.Join(b.SysRoot, "class", "block", name)
	if _, err := os.Stat(sysBlock); err != nil {
		return WriteTarget{}, fmt.Errorf("%w: %s has no %s", ErrNotBlockDevice, dev, sysBlock)
	}
	mode, err := b.Mode(path)
	if err != nil {
		return WriteTarget{}, fmt.Errorf("%w: %s: %v", ErrNotBlockDevice, path, err)
	}
	if mode&fs.ModeDevice == 0 || mode&fs.ModeCharDevice != 0 {
		return WriteTarget{}, fmt.Errorf("%w: %s", ErrNotBlockDevice, path)
	}
	if _, err := os.Stat(filepath.Join(sysBlock, "partition")); err == nil {
		return WriteTarget{}, fmt.Errorf("%w: %s", ErrIsPartition, path)
	}

	t := WriteTarget{Name: name, Path: path}
	t.Remove = writeReadTrim(filepath.Join(sysBlock, "removable")) == "1"
	if link, err := filepath.EvalSymlinks(sysBlock); err == nil {
		t.USB = writeThroughUSB(link)
	}
	sectors, err := strconv.ParseInt(writeReadTrim(filepath.Join(sysBlock, "size")), 10, 64)
	if err != nil || sectors <= 0 {
		return t, fmt.Errorf("%w: %s", ErrNoMedium, path)
	}
	t.Size = sectors * 512 // sysfs size is always in 512-byte units
	t.Model = strings.Join(strings.Fields(writeReadTrim(filepath.Join(sysBlock, "device", "vendor"))+" "+
		writeReadTrim(filepath.Join(sysBlock, "device", "model"))), " ")

	devs, names, err := b.family(sysBlock, name)
	if err != nil {
		return t, err
	}
	if err := b.checkMounts(path, devs, names); err != nil {
		return t, err
	}
	if err := b.checkSwaps(path, names); err != nil {
		return t, err
	}
	// Last, so a system disk is named as such rather than as "not removable".
	if !t.Remove && !t.USB {
		return t, fmt.Errorf("%w: %s (removable=0, not on USB)", ErrNotRemovable, path)
	}
	return t, nil
}

// resolve turns dev into a kernel name and the /dev path.
func (b BlockDevices) resolve(dev string) (name, path string, err error) {
	if !strings.Contains(dev, "/") {
		dev = filepath.Join(b.DevRoot, dev)
	}
	dev = filepath.Clean(dev)
	if rel, err := filepath.Rel(b.DevRoot, dev); err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return "", "", fmt.Errorf("%w: %s is not under %s", ErrNotBlockDevice, dev, b.DevRoot)
	}
	real, err := filepath.EvalSymlinks(dev)
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrNotBlockDevice, err)
	}
	if rel, err := filepath.Rel(b.DevRoot, real); err != nil || strings.HasPrefix(rel, "..") || strings.Contains(rel, "/") {
		return "", "", fmt.Errorf("%w: %s resolves to %s", ErrNotBlockDevice, dev, real)
	}
	return filepath.Base(real), real, nil
}

// family returns the major:minor numbers and kernel names of the disk, its
// partitions and, transitively, whatever holds them (dm, md), and refuses
// a disk that something holds.
func (b BlockDevices) family(sysBlock, name string) (devs, names map[string]bool, err error) {
	devs, names = map[string]bool{}, map[string]bool{}
	members := []string{name}
	if entries, err := os.ReadDir(sysBlock); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), name) {
				if _, err := os.Stat(filepath.Join(sysBlock, e.Name(), "partition")); err == nil {
					members = append(members, e.Name())
				}
			}
		}
	}
	for _, m := range members {
		dir := filepath.Join(b.SysRoot, "class", "block", m)
		names[m] = true
		if d := writeReadTrim(filepath.Join(dir, "dev")); d != "" {
			devs[d] = true
		}
		holders, _ := os.ReadDir(filepath.Join(dir, "holders"))
		for _, h := range holders {
			return nil, nil, fmt.Errorf("%w: %s is held by %s", ErrDiskInUse, m, h.Name())
		}
	}
	return devs, names, nil
}

// checkMounts refuses the disk when any member is in the mount table,
// matched by major:minor and by source path.
func (b BlockDevices) checkMounts(path string, devs, names map[string]bool) error {
	f, err := os.Open(b.MountInfo)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCannotCheck, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m, ok := parseMountInfoLine(sc.Text())
		if !ok {
			continue
		}
		if !devs[m.MajorMinor] && !(strings.HasPrefix(m.Source, "/dev/") && names[filepath.Base(m.Source)]) {
			continue
		}
		switch m.MountPoint {
		case "/", "/boot", "/boot/efi", "/efi", "/usr":
			return fmt.Errorf("%w: %s is mounted at %s", ErrSystemDisk, path, m.MountPoint)
		}
		return fmt.Errorf("%w: %s is mounted at %s", ErrMounted, path, m.MountPoint)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrCannotCheck, err)
	}
	return nil
}

// checkSwaps refuses a disk with a partition in use as swap.
func (b BlockDevices) checkSwaps(path string, names map[string]bool) error {
	data, err := os.ReadFile(b.Swaps)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no swap support
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCannotCheck, err)
	}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 0 && names[filepath.Base(f[0])] {
			return fmt.Errorf("%w: %s is swap", ErrDiskInUse, f[0])
		}
	}
	return nil
}

// MountInfo is the part of one /proc/self/mountinfo line the checks need.
type MountInfo struct {
	MajorMinor string
	MountPoint string
	FSType     string
	Source     string
}

// parseMountInfoLine parses "id parent maj:min root mountpoint opts
// [optional...] - fstype source superopts", unescaping octal escapes.
func parseMountInfoLine(line string) (MountInfo, bool) {
	f := strings.Fields(line)
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if len(f) < 6 || sep < 0 || sep+2 >= len(f) {
		return MountInfo{}, false
	}
	return MountInfo{
		MajorMinor: f[2],
		MountPoint: writeUnescape(f[4]),
		FSType:     f[sep+1],
		Source:     writeUnescape(f[sep+2]),
	}, true
}

// writeUnescape undoes the kernel's \ooo escaping of spaces and the like.
func writeUnescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// writeThroughUSB says whether a resolved sysfs device path passes a USB
// host controller or hub ("usb1", "1-2", "1-2:1.0").
func writeThroughUSB(link string) bool {
	for _, part := range strings.Split(link, "/") {
		if strings.HasPrefix(part, "usb") && len(part) > 3 {
			if _, err := strconv.Atoi(part[3:]); err == nil {
				return true
			}
		}
	}
	return false
}

func writeReadTrim(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(b))
}

// WriteImage copies the image file to the target device (or any file),
// reporting progress about every 5%, and syncs before returning. The
// device is opened O_EXCL so Linux refuses it if it got mounted meanwhile.
func WriteImage(image string, t WriteTarget, progress io.Writer) error {
	if progress == nil {
		progress = io.Discard
	}
	src, err := os.Open(image)
	if err != nil {
		return fmt.Errorf("write-image: %w", err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return fmt.Errorf("write-image: %w", err)
	}
	if t.Size > 0 && fi.Size() > t.Size {
		return fmt.Errorf("%w: image %d bytes, %s %d bytes", ErrDiskTooSmall, fi.Size(), t.Path, t.Size)
	}
	dst, err := os.OpenFile(t.Path, os.O_WRONLY|os.O_EXCL, 0)
	if err != nil {
		return fmt.Errorf("write-image: %w", err)
	}
	total := fi.Size()
	buf := make([]byte, 4<<20)
	var done int64
	nextReport := int64(0)
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				dst.Close()
				return fmt.Errorf("write-image: writing %s at %d: %w", t.Path, done, werr)
			}
			done += int64(n)
			if done >= nextReport || done == total {
				fmt.Fprintf(progress, "write-image: %d/%d MiB (%d%%)\n", done>>20, total>>20, done*100/max(total, 1))
				nextReport = done + max(total/20, 1)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			dst.Close()
			return fmt.Errorf("write-image: reading %s: %w", image, rerr)
		}
	}
	fmt.Fprintf(progress, "write-image: syncing %s\n", t.Path)
	if err := dst.Sync(); err != nil {
		dst.Close()
		return fmt.Errorf("write-image: sync %s: %w", t.Path, err)
	}
	if err := dst.Close(); err != nil {
		return fmt.Errorf("write-image: %w", err)
	}
	return nil
}
