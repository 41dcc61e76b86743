package display

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrNoFramebuffer means no framebuffer device appeared before the deadline;
// the appliance then runs headless and says so on its status line.
var ErrNoFramebuffer = errors.New("no framebuffer")

// OpenFramebuffer opens <devRoot>/fb0, reads its geometry and maps its
// memory. The device is opened read-write only because mmap for writing
// needs it; nothing is ever read from the screen.
func OpenFramebuffer(devRoot string) (*Framebuffer, error) {
	path := filepath.Join(devRoot, "fb0")
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %v", ErrNoFramebuffer, err)
		}
		return nil, fmt.Errorf("display: open %s: %w", path, err)
	}
	// The mapping outlives the descriptor, so it can be closed right away.
	defer f.Close()
	fd := int(f.Fd())

	var vinfo fbVarScreenInfo
	var finfo fbFixScreenInfo
	if err := ioctlPtr(fd, ioctlFBIOGetVScreenInfo, unsafe.Pointer(&vinfo)); err != nil {
		return nil, fmt.Errorf("display: FBIOGET_VSCREENINFO on %s: %w", path, err)
	}
	if err := ioctlPtr(fd, ioctlFBIOGetFScreenInfo, unsafe.Pointer(&finfo)); err != nil {
		return nil, fmt.Errorf("display: FBIOGET_FSCREENINFO on %s: %w", path, err)
	}
	geo, err := geometryFromScreenInfo(vinfo, finfo)
	if err != nil {
		return nil, fmt.Errorf("display: %s (%q): %w", path, driverName(finfo), err)
	}
	mem, err := unix.Mmap(fd, 0, int(finfo.SmemLen), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("display: mmap %s (%d bytes): %w", path, finfo.SmemLen, err)
	}
	fb, err := NewFramebuffer(mem, geo)
	if err != nil {
		_ = unix.Munmap(mem)
		return nil, err
	}
	fb.release = func() error { return unix.Munmap(mem) }
	return fb, nil
}

// driverName is the fix info's id ("EFI VGA", "simpledrmdrmfb"), for messages.
func driverName(f fbFixScreenInfo) string {
	n := 0
	for n < len(f.ID) && f.ID[n] != 0 {
		n++
	}
	return string(f.ID[:n])
}

func ioctlPtr(fd int, req uint, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}
