package display

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// recheckEvery bounds how long a missed inotify event (or a directory that
// cannot be watched) can delay noticing the device.
const recheckEvery = 500 * time.Millisecond

// WaitForDevice waits until dir/name exists, for at most timeout. It sleeps
// on inotify (devtmpfs reports new nodes) and re-checks on a slow timer as a
// fallback. Late framebuffers are normal: simpledrm, efifb and i915 can all
// appear after PID 1 starts. Not there in time: ErrNoFramebuffer.
func WaitForDevice(ctx context.Context, dir, name string, timeout time.Duration) error {
	path := filepath.Join(dir, name)
	exists := func() bool { _, err := os.Stat(path); return err == nil }
	if exists() {
		return nil
	}
	deadline := time.Now().Add(timeout)

	// Watch first, then check again, so a node created in between is seen.
	ifd := watchDir(dir)
	if ifd >= 0 {
		defer unix.Close(ifd)
	}
	buf := make([]byte, 4096)
	for {
		if exists() {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("waiting for %s: %w", path, err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("%w: %s did not appear within %v", ErrNoFramebuffer, path, timeout)
		}
		nap := min(left, recheckEvery)
		if ifd < 0 {
			t := time.NewTimer(nap)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			continue
		}
		fds := []unix.PollFd{{Fd: int32(ifd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, int(nap.Milliseconds())+1); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("waiting for %s: poll: %w", path, err)
		}
		// Drain the events; which ones arrived does not matter, the stat does.
		for {
			if n, err := unix.Read(ifd, buf); n <= 0 || err != nil {
				break
			}
		}
	}
}

// watchDir returns an inotify descriptor watching dir for new entries, or -1
// when that is not possible (the caller then re-checks on its timer).
func watchDir(dir string) int {
	ifd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return -1
	}
	if _, err := unix.InotifyAddWatch(ifd, dir, unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_ATTRIB); err != nil {
		unix.Close(ifd)
		return -1
	}
	return ifd
}
