package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/anatol/devmapper.go"
	"golang.org/x/sys/unix"
)

// DevMapper maps dm-crypt through device-mapper ioctls (no cryptsetup, no
// udev) and creates the /dev/mapper node itself. It is the same table
// luks.go's SetupMapper loads, built from the checked in-memory header
// rather than from a second read of the disk.
type DevMapper struct {
	// DevDir is where nodes go ("/dev" in production).
	DevDir string
}

// Map implements Mapper.
func (m DevMapper) Map(s MapSpec) (string, error) {
	if s.SectorSize == 0 || s.Length%512 != 0 || s.Offset%512 != 0 {
		return "", fmt.Errorf("dm-crypt %s: unaligned segment", s.Name)
	}
	table := devmapper.CryptTable{
		Length:        s.Length, // devmapper.go takes bytes
		BackendDevice: s.Backing,
		BackendOffset: s.Offset,
		Encryption:    s.Cipher,
		Key:           s.Key,
		SectorSize:    s.SectorSize,
	}
	uuid := "CRYPT-LUKS2-" + strings.ReplaceAll(s.UUID, "-", "") + "-" + s.Name
	if err := devmapper.CreateAndLoad(s.Name, uuid, 0, table); err != nil {
		return "", fmt.Errorf("dm-crypt %s: %w", s.Name, err)
	}
	info, err := devmapper.InfoByName(s.Name)
	if err != nil {
		_ = devmapper.Remove(s.Name)
		return "", fmt.Errorf("dm-crypt %s info: %w", s.Name, err)
	}
	node := filepath.Join(m.DevDir, "mapper", s.Name)
	if err := os.MkdirAll(filepath.Dir(node), 0o755); err != nil {
		_ = devmapper.Remove(s.Name)
		return "", err
	}
	_ = os.Remove(node)
	if err := unix.Mknod(node, unix.S_IFBLK|0o600, int(info.DevNo)); err != nil {
		_ = devmapper.Remove(s.Name)
		return "", fmt.Errorf("mknod %s: %w", node, err)
	}
	return node, nil
}

// Unmap implements Mapper.
func (m DevMapper) Unmap(name string) error {
	_ = os.Remove(filepath.Join(m.DevDir, "mapper", name))
	return devmapper.Remove(name)
}

// SysMounter is the production Mounter.
type SysMounter struct{}

// Mount implements Mounter.
func (SysMounter) Mount(source, target, fstype string, flags uintptr, data string) error {
	if err := os.MkdirAll(target, 0o700); err != nil {
		return err
	}
	return unix.Mount(source, target, fstype, flags, data)
}

// Unmount implements Mounter.
func (SysMounter) Unmount(target string) error { return unix.Unmount(target, 0) }
