package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

var (
	// ErrStillMounted: the ESP (or a candidate) could not be unmounted;
	// the contract halts.
	ErrStillMounted = errors.New("boot ESP still mounted")
	// ErrCannotDetach: the boot disk's transport cannot be detached; halt.
	ErrCannotDetach = errors.New("boot medium cannot be detached")
	// ErrDetach: a detach step failed (read-only, remove, node deletion).
	ErrDetach = errors.New("detaching the boot medium failed")
	// ErrNotGone: the boot medium is still reachable after detaching.
	ErrNotGone = errors.New("boot medium still present")
)

// DetachWait bounds the wait for a removed USB disk to leave sysfs when the
// caller's context has no earlier deadline.
const DetachWait = 10 * time.Second

// DetachResult says what happened to the boot medium.
type DetachResult struct {
	// Outcome is "removed" (USB device disconnected) or "isolated" (device
	// nodes deleted; the kernel still has the disk).
	Outcome string `json:"outcome"`
	Disk    string `json:"disk"`
	// ReadOnly is whether BLKROSET succeeded on the disk.
	ReadOnly bool `json:"read_only"`
	// Removed lists the device nodes deleted when isolating.
	Removed []string `json:"removed,omitempty"`
}

// UnmountESP unmounts the ESP, retrying while the kernel says EBUSY, for at
// most timeout (the contract: 5 s). Still mounted then: ErrStillMounted.
func UnmountESP(ctx context.Context, env Env, esp *ESP, timeout time.Duration) error {
	var last error
	err := pollUntil(ctx, "the boot ESP to unmount", timeout, func() (bool, error) {
		err := env.Mounter.Unmount(esp.MountPoint, 0)
		switch {
		case err == nil, errors.Is(err, unix.EINVAL):
			// EINVAL: not a mount point any more, which is what we want.
			return true, nil
		case errors.Is(err, unix.EBUSY):
			last = err
			return false, nil
		default:
			return false, err
		}
	})
	if err != nil {
		if last != nil {
			return fmt.Errorf("%w: %s: %v (%v)", ErrStillMounted, esp.MountPoint, last, err)
		}
		return fmt.Errorf("%w: %s: %w", ErrStillMounted, esp.MountPoint, err)
	}
	os.Remove(esp.MountPoint)
	return nil
}

// Detach makes the boot medium unreadable for the rest of the boot: sync,
// set the disk read-only, then remove a USB device for good (waiting until
// its disk leaves sysfs) or, for virtio and NVMe, delete the disk's device
// nodes. Any other transport is ErrCannotDetach.
func Detach(ctx context.Context, env Env, esp *ESP) (DetachResult, error) {
	res := DetachResult{Disk: esp.Disk}
	if !diskNameRE.MatchString(esp.Disk) {
		return res, fmt.Errorf("%w: bad disk name %q", ErrDetach, esp.Disk)
	}
	switch Transport(esp.Transport) {
	case TransportUSB, TransportVirtio, TransportNVMe:
	default:
		return res, fmt.Errorf("%w: %s is attached via %q", ErrCannotDetach, esp.Disk, esp.Transport)
	}
	env.Disk.Sync()
	if err := env.Disk.SetReadOnly(filepath.Join(env.DevRoot, esp.Disk)); err != nil {
		return res, fmt.Errorf("%w: setting %s read-only: %w", ErrDetach, esp.Disk, err)
	}
	res.ReadOnly = true
	if Transport(esp.Transport) == TransportUSB {
		return res, removeUSB(ctx, env, esp, &res)
	}
	return res, isolateNodes(env, esp, &res)
}

// removeUSB writes 1 to the USB device's remove file and waits until the
// disk is gone from sysfs.
func removeUSB(ctx context.Context, env Env, esp *ESP, res *DetachResult) error {
	if !usbDeviceRE.MatchString(esp.USBDevice) {
		return fmt.Errorf("%w: bad USB device name %q", ErrDetach, esp.USBDevice)
	}
	remove := filepath.Join(env.SysRoot, "bus", "usb", "devices", esp.USBDevice, "remove")
	if err := writeSysfs(remove, "1"); err != nil {
		return fmt.Errorf("%w: %w", ErrDetach, err)
	}
	diskEntry := filepath.Join(env.SysRoot, "class", "block", esp.Disk)
	timeout := DetachWait
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	err := pollUntil(ctx, "boot disk "+esp.Disk+" to leave sysfs", timeout, func() (bool, error) {
		return !exists(diskEntry), nil
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotGone, err)
	}
	res.Outcome = "removed"
	return nil
}

// isolateNodes deletes the disk's node and its partitions' nodes (and, for
// NVMe, the namespace's generic char node ngXnY and the controller node
// nvmeX, both of which pass raw I/O commands through).
func isolateNodes(env Env, esp *ESP, res *DetachResult) error {
	var errs []error
	for _, n := range diskNodes(env, esp) {
		p := filepath.Join(env.DevRoot, n)
		err := os.Remove(p)
		switch {
		case err == nil:
			res.Removed = append(res.Removed, p)
		case errors.Is(err, os.ErrNotExist):
		default:
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrDetach, errors.Join(errs...))
	}
	if err := StillGone(env, esp); err != nil {
		return err
	}
	res.Outcome = "isolated"
	return nil
}

// diskNodes names the /dev entries that reach the disk: the disk, every
// partition sysfs lists under it, and for NVMe the generic and controller
// nodes.
func diskNodes(env Env, esp *ESP) []string {
	nodes := []string{esp.Disk}
	entries, _ := os.ReadDir(filepath.Join(env.SysRoot, "class", "block", esp.Disk))
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, esp.Disk) && candidateNameRE.MatchString(name) {
			nodes = append(nodes, name)
		}
	}
	if Transport(esp.Transport) == TransportNVMe && strings.HasPrefix(esp.Disk, "nvme") {
		ns := strings.TrimPrefix(esp.Disk, "nvme") // "0n1"
		ctrl, _, _ := strings.Cut(ns, "n")
		nodes = append(nodes, "ng"+ns, "nvme"+ctrl)
	}
	if esp.Device != "" {
		// The partition the ESP was mounted from, even if sysfs forgot it.
		nodes = append(nodes, filepath.Base(esp.Device))
	}
	return nodes
}

// StillGone checks that the boot medium is unreachable: for USB its disk is
// gone from sysfs; otherwise none of its /dev nodes exist. It returns
// ErrNotGone naming what is still there.
func StillGone(env Env, esp *ESP) error {
	if Transport(esp.Transport) == TransportUSB {
		if exists(filepath.Join(env.SysRoot, "class", "block", esp.Disk)) {
			return fmt.Errorf("%w: %s still in sysfs", ErrNotGone, esp.Disk)
		}
		return nil
	}
	var left []string
	for _, n := range diskNodes(env, esp) {
		if exists(filepath.Join(env.DevRoot, n)) {
			left = append(left, n)
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("%w: /dev nodes %v", ErrNotGone, left)
	}
	return nil
}

// exists reports whether path exists, not following a final symlink.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// writeSysfs writes value to an existing sysfs attribute (never creating it).
func writeSysfs(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(value)
	cerr := f.Close()
	if werr != nil {
		return fmt.Errorf("writing %s: %w", path, werr)
	}
	if cerr != nil {
		return fmt.Errorf("writing %s: %w", path, cerr)
	}
	return nil
}
