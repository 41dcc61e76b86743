//go:build linux

// Package guest is the in-VM half of the test harness: the few things a tiny
// static /init needs to report back to the host. It mounts the basic
// filesystems, loads the kernel modules the host packed into the initramfs,
// finds a virtio-serial port by name without udev, and powers the VM off.
// It is used only by the harness's own guest programs (scripts/enroll,
// scripts/vmtest/runner, the harness self-test), never by the appliance.
package guest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"inert/boot"
)

// ModulesList is where the host writes the modules to load, one path per
// line (relative to /), dependencies first.
const ModulesList = "/etc/harness/modules"

var (
	// ErrNoPort means the named virtio-serial port did not appear in time.
	ErrNoPort = errors.New("guest: virtio-serial port not found")
	// ErrModule means a kernel module could not be loaded.
	ErrModule = errors.New("guest: module load failed")
)

// Mount is one filesystem to mount at boot.
type Mount struct {
	Source, Target, FSType string
	Flags                  uintptr
	Data                   string
	// Optional mounts are allowed to fail (the kernel may lack the filesystem).
	Optional bool
}

// BasicMounts is what every harness guest needs.
var BasicMounts = []Mount{
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", false},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", false},
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755", false},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "", true},
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "", false},
	{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "", false},
}

// MountAll mounts each entry, creating its target. It stops at the first
// failure of a non-optional mount.
func MountAll(mounts []Mount) error {
	for _, m := range mounts {
		if err := os.MkdirAll(m.Target, 0o755); err != nil && !m.Optional {
			return fmt.Errorf("guest: mkdir %s: %w", m.Target, err)
		}
		if err := unix.Mount(m.Source, m.Target, m.FSType, m.Flags, m.Data); err != nil && !errors.Is(err, unix.EBUSY) && !m.Optional {
			return fmt.Errorf("guest: mount %s on %s: %w", m.FSType, m.Target, err)
		}
	}
	return nil
}

// LoadModules loads every module listed in ModulesList, in order. A module
// that is already loaded (or built in) is not an error. A missing list means
// nothing to load.
func LoadModules() error {
	data, err := os.ReadFile(ModulesList)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrModule, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		path := strings.TrimSpace(line)
		if path == "" {
			continue
		}
		if err := loadModule(path); err != nil {
			return err
		}
	}
	return nil
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrModule, path, err)
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("%w: %s: %v", ErrModule, filepath.Base(path), err)
	}
	return nil
}

// OpenPort waits up to timeout for the virtio-serial port with the given name
// and opens it for writing. Without udev there is no /dev/virtio-ports link,
// so it matches the port's sysfs name (boot.VirtioPort) and opens
// /dev/vportNpM, re-checking whenever the kernel announces a device.
func OpenPort(name string, timeout time.Duration) (*os.File, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// Listen before the first look, so an announcement in between is kept.
	uevents, err := boot.OpenNetlinkUevents()
	if err != nil {
		return nil, fmt.Errorf("guest: uevents: %w", err)
	}
	defer uevents.Close()
	for {
		if dev, ok := boot.VirtioPort("/sys", name); ok {
			f, err := os.OpenFile("/dev/"+dev, os.O_RDWR, 0)
			if err == nil {
				return f, nil
			}
			if !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("guest: open port %s: %w", name, err)
			}
		}
		err := uevents.WaitFor(ctx, "virtio port "+name, func(u boot.Uevent) bool { return u.Action == "add" })
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %q after %s", ErrNoPort, name, timeout)
		}
		if err != nil {
			return nil, fmt.Errorf("guest: awaiting port %s: %w", name, err)
		}
	}
}

// Cmdline returns the value of key=value on the kernel command line, split
// by whole tokens as the kernel does (boot.ParseCmdline).
func Cmdline(key string) (string, bool) {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return "", false
	}
	return boot.ParseCmdline(string(b)).Value(key)
}

// PowerOff syncs and powers the VM off. It returns only on failure.
func PowerOff() error {
	unix.Sync()
	return unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}
