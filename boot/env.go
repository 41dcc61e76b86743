package boot

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Env is where boot actions look and what they act through. Production uses
// DefaultEnv; tests point the roots at fake trees and pass recording fakes.
type Env struct {
	// SysRoot, DevRoot and ProcRoot stand for /sys, /dev and /proc.
	SysRoot  string
	DevRoot  string
	ProcRoot string
	Mounter  Mounter
	// Uevents ends waits early when the kernel announces a device; nil means
	// waits simply run to their deadline.
	Uevents UeventSource
	// Disk syncs and sets block devices read-only.
	Disk DiskControl
	// MountBase is the directory under which ESP candidates are mounted.
	MountBase string
}

// DefaultEnv is the real machine. The caller opens the uevent socket (see
// OpenNetlinkUevents) before the first scan so no announcement is missed.
func DefaultEnv(mountBase string, uevents UeventSource) Env {
	return Env{
		SysRoot: "/sys", DevRoot: "/dev", ProcRoot: "/proc",
		Mounter: SysMounter{}, Uevents: uevents, Disk: SysDisk{},
		MountBase: mountBase,
	}
}

// Mounter is the part of mount(2)/umount2(2) boot needs.
type Mounter interface {
	Mount(source, target, fstype string, flags uintptr, data string) error
	Unmount(target string, flags int) error
}

// SysMounter is the real Mounter.
type SysMounter struct{}

// Mount calls mount(2).
func (SysMounter) Mount(source, target, fstype string, flags uintptr, data string) error {
	return unix.Mount(source, target, fstype, flags, data)
}

// Unmount calls umount2(2).
func (SysMounter) Unmount(target string, flags int) error {
	return unix.Unmount(target, flags)
}

// DiskControl is what detaching needs from the block layer.
type DiskControl interface {
	// Sync flushes all file systems and block devices.
	Sync()
	// SetReadOnly sets the block device node read-only (BLKROSET).
	SetReadOnly(devNode string) error
}

// SysDisk is the real DiskControl.
type SysDisk struct{}

// Sync calls sync(2).
func (SysDisk) Sync() { unix.Sync() }

// SetReadOnly opens devNode without writing and issues BLKROSET 1. On the
// whole disk this makes every partition read-only too (get_disk_ro).
func (SysDisk) SetReadOnly(devNode string) error {
	f, err := os.OpenFile(devNode, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.BLKROSET, 1); err != nil {
		return fmt.Errorf("BLKROSET %s: %w", devNode, err)
	}
	return nil
}
