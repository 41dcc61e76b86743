package boot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Uevent is one kernel uevent: "ACTION@DEVPATH" then KEY=VALUE pairs.
type Uevent struct {
	Action  string
	DevPath string
	Vars    map[string]string
}

var (
	// ErrBadUevent: a netlink message that is not a kernel uevent.
	ErrBadUevent = errors.New("malformed uevent")
	// ErrWaitTimeout: a named wait reached its deadline.
	ErrWaitTimeout = errors.New("timed out waiting")
)

// maxUeventSize bounds a message; the kernel's own buffer is 2048 bytes.
const maxUeventSize = 8192

// ParseUevent parses a kernel uevent datagram "ACTION@DEVPATH\0KEY=VAL\0...".
// udev's re-broadcasts ("libudev" header) and anything without the header,
// with a KEY lacking '=' or with an ACTION= that contradicts the header are
// ErrBadUevent.
func ParseUevent(b []byte) (Uevent, error) {
	if len(b) > maxUeventSize {
		return Uevent{}, fmt.Errorf("%w: %d bytes", ErrBadUevent, len(b))
	}
	fields := bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0})
	head := string(fields[0])
	at := strings.IndexByte(head, '@')
	if at <= 0 || at == len(head)-1 {
		return Uevent{}, fmt.Errorf("%w: no ACTION@DEVPATH header", ErrBadUevent)
	}
	u := Uevent{Action: head[:at], DevPath: head[at+1:], Vars: map[string]string{}}
	if !strings.HasPrefix(u.DevPath, "/") {
		return Uevent{}, fmt.Errorf("%w: devpath is not absolute", ErrBadUevent)
	}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(string(f), "=")
		if !ok || k == "" {
			return Uevent{}, fmt.Errorf("%w: field without KEY=", ErrBadUevent)
		}
		u.Vars[k] = v
	}
	if a, ok := u.Vars["ACTION"]; ok && a != u.Action {
		return Uevent{}, fmt.Errorf("%w: ACTION does not match the header", ErrBadUevent)
	}
	return u, nil
}

// IsBlockAdd matches a block device (disk or partition) being added.
func IsBlockAdd(u Uevent) bool {
	return u.Action == "add" && u.Vars["SUBSYSTEM"] == "block"
}

// UeventSource waits for a uevent. Uevents are hints to look again at sysfs,
// never facts in themselves: callers re-read sysfs after a match.
type UeventSource interface {
	// WaitFor returns nil when a uevent satisfying match arrives, an error
	// wrapping ErrWaitTimeout (naming what was awaited) when ctx's deadline
	// passes, or ctx.Err() when ctx is cancelled.
	WaitFor(ctx context.Context, name string, match func(Uevent) bool) error
}

// NetlinkUevents reads kernel uevents from a NETLINK_KOBJECT_UEVENT socket
// bound to the kernel's multicast group. Open it before scanning sysfs: the
// socket queues what arrives between the scan and the wait.
type NetlinkUevents struct {
	mu sync.Mutex
	f  *os.File
}

// OpenNetlinkUevents opens and binds the uevent socket.
func OpenNetlinkUevents() (*NetlinkUevents, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK,
		unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("uevent socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("uevent bind: %w", err)
	}
	// A non-blocking fd joins Go's poller, so read deadlines work.
	return &NetlinkUevents{f: os.NewFile(uintptr(fd), "uevent")}, nil
}

// Close closes the socket.
func (n *NetlinkUevents) Close() error { return n.f.Close() }

// WaitFor implements UeventSource. Messages not sent by the kernel
// (sender port id != 0) and malformed ones are ignored.
func (n *NetlinkUevents) WaitFor(ctx context.Context, name string, match func(Uevent) bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	deadline, hasDeadline := ctx.Deadline()
	if hasDeadline {
		if err := n.f.SetReadDeadline(deadline); err != nil {
			return fmt.Errorf("waiting for %s: %w", name, err)
		}
	} else {
		n.f.SetReadDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { n.f.SetReadDeadline(time.Now()) })
	defer stop()
	rc, err := n.f.SyscallConn()
	if err != nil {
		return fmt.Errorf("waiting for %s: %w", name, err)
	}
	buf := make([]byte, maxUeventSize+1)
	for {
		var got int
		var from unix.Sockaddr
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			got, from, rerr = unix.Recvfrom(int(fd), buf, 0)
			return rerr != unix.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		if errors.Is(err, unix.ENOBUFS) {
			// The queue overflowed: events were lost, so report "something
			// happened" and let the caller look at sysfs again.
			return nil
		}
		if err != nil {
			if errors.Is(ctx.Err(), context.Canceled) {
				return ctx.Err()
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return fmt.Errorf("%w for %s", ErrWaitTimeout, name)
			}
			return fmt.Errorf("waiting for %s: %w", name, err)
		}
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue
		}
		u, perr := ParseUevent(buf[:got])
		if perr == nil && match(u) {
			return nil
		}
	}
}
