package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"inert/storage/luks2"
)

// BlockDevice is an open partition: positional I/O, a barrier, Close.
type BlockDevice interface {
	luks2.Device
	io.Closer
}

// DeviceOpener opens a partition read-write and reports its size in bytes.
type DeviceOpener interface {
	OpenDevice(path string) (BlockDevice, uint64, error)
}

// MapSpec is a dm-crypt mapping of one LUKS2 data segment.
type MapSpec struct {
	Name       string // mapper name: lapee-nonvolatile
	Backing    string // /dev/vdb1
	Offset     uint64 // bytes
	Length     uint64 // bytes
	SectorSize uint64
	Cipher     string
	Key        []byte // borrowed; the mapper must not keep it
	UUID       string // LUKS UUID, for the dm uuid
}

// Mapper creates and removes dm-crypt mappings and returns the device node.
type Mapper interface {
	Map(spec MapSpec) (devPath string, err error)
	Unmap(name string) error
}

// Mounter mounts and unmounts filesystems.
type Mounter interface {
	Mount(source, target, fstype string, flags uintptr, data string) error
	Unmount(target string) error
}

// Filesystems creates filesystems and tells whether one exists.
type Filesystems interface {
	MakeFS(ctx context.Context, dev, label string) error
	HasFS(dev string) (bool, error)
}

// ErrMkfs: mke2fs failed.
var ErrMkfs = errors.New("mke2fs failed")

// OSDevices opens real block devices (or image files).
type OSDevices struct{}

// OpenDevice implements DeviceOpener.
func (OSDevices) OpenDevice(path string) (BlockDevice, uint64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, 0, err
	}
	size, err := f.Seek(0, io.SeekEnd) // works for block devices and files
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, uint64(size), nil
}

// ext4LabelMax is the size of the ext4 superblock's volume name field.
const ext4LabelMax = 16

// Ext4 makes ext4 filesystems with mke2fs (bundled into the initramfs).
type Ext4 struct {
	// Mke2fs is the binary path; "mke2fs" from PATH when empty.
	Mke2fs string
}

// MakeFS implements Filesystems. -F because the target is a fresh dm
// device whose random contents may look like anything; -q keeps the serial
// quiet. Nothing secret is on the command line.
func (e Ext4) MakeFS(ctx context.Context, dev, label string) error {
	if len(label) > ext4LabelMax {
		// The contract's "lapee-nonvolatile" is 17 bytes; ext4 keeps 16, and
		// mke2fs would truncate the same way with a warning.
		label = label[:ext4LabelMax]
	}
	bin := e.Mke2fs
	if bin == "" {
		bin = "mke2fs"
	}
	cmd := exec.CommandContext(ctx, bin, "-q", "-F", "-t", "ext4", "-L", label, dev)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %v: %s", ErrMkfs, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// HasFS implements Filesystems: the ext2/3/4 superblock magic 0xEF53 at
// byte 1024+56.
func (Ext4) HasFS(dev string) (bool, error) {
	f, err := os.Open(dev)
	if err != nil {
		return false, err
	}
	defer f.Close()
	return hasExtMagic(f)
}

func hasExtMagic(r io.ReaderAt) (bool, error) {
	var b [2]byte
	if _, err := r.ReadAt(b[:], 1024+56); err != nil {
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		return false, err
	}
	return b[0] == 0x53 && b[1] == 0xEF, nil
}
