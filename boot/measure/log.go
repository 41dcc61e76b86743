package measure

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// LogPath is where systemd and inert keep the userspace measurement log.
const LogPath = "/run/log/systemd/tpm2-measure.log"

// Log appends records to the userspace measurement log. It follows systemd's
// protocol: every update runs under flock(LOCK_EX) on an O_APPEND descriptor,
// and the file's sticky bit is set while a PCR extend is in flight and
// cleared once its record is written, so a reader can tell a log left
// incomplete by a crash.
type Log struct {
	f *os.File
	// BootID is copied into each record (systemd's "bootId", 32 hex digits);
	// empty leaves it out.
	BootID string
	// Now returns CLOCK_BOOTTIME in microseconds for "timestamp"; nil leaves
	// it out (tests, deterministic logs).
	Now func() uint64
}

// CreateLog opens path for inert's log and empties it: whatever an earlier
// writer left there is not inert's and is not trusted. Parents are created
// 0755, the file 0600. Symlinks are not followed.
func CreateLog(path string) (*Log, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrLog, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %v", ErrLog, path, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err == nil {
		err = lockExclusive(f)
	}
	if err == nil {
		err = f.Truncate(0)
		err = errors.Join(err, f.Chmod(0o600), unlock(f))
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: start %s: %v", ErrLog, path, err)
	}
	return &Log{f: f}, nil
}

// Path is the log file's name.
func (l *Log) Path() string { return l.f.Name() }

// Close closes the log.
func (l *Log) Close() error { return l.f.Close() }

// Measure runs one measurement under the log's exclusive lock: it marks the
// log dirty (sticky bit), runs extend, appends rec and marks the log clean.
// When extend fails the log stays marked dirty: the TPM may or may not hold
// the measurement, and the boot halts anyway.
func (l *Log) Measure(rec Record, extend func() error) error {
	if rec.ContentType == "" {
		rec.ContentType = ContentTypeSystemd
	}
	if l.BootID != "" {
		rec.Content.BootID = l.BootID
	}
	if l.Now != nil {
		rec.Content.Timestamp = l.Now()
	}
	line, err := EncodeRecord(rec)
	if err != nil {
		return err
	}
	if err := lockExclusive(l.f); err != nil {
		return fmt.Errorf("%w: lock: %v", ErrLog, err)
	}
	defer unlock(l.f)
	if err := l.f.Chmod(0o600 | os.ModeSticky); err != nil {
		return fmt.Errorf("%w: mark dirty: %v", ErrLog, err)
	}
	if err := extend(); err != nil {
		return err
	}
	if _, err := l.f.Write(line); err != nil {
		return fmt.Errorf("%w: append: %v", ErrLog, err)
	}
	if err := l.f.Chmod(0o600); err != nil {
		return fmt.Errorf("%w: mark clean: %v", ErrLog, err)
	}
	return nil
}

// ReadBootID reads the kernel's boot id in systemd's form (hex, no dashes)
// from root/proc/sys/kernel/random/boot_id; "" when unreadable.
func ReadBootID(root string) string {
	b, err := os.ReadFile(filepath.Join(root, "proc/sys/kernel/random/boot_id"))
	if err != nil {
		return ""
	}
	id := strings.ReplaceAll(strings.TrimSpace(string(b)), "-", "")
	if len(id) != 32 {
		return ""
	}
	return id
}

// BootTimeMicros is CLOCK_BOOTTIME in microseconds, systemd's timestamp.
func BootTimeMicros() uint64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return 0
	}
	return uint64(ts.Sec)*1e6 + uint64(ts.Nsec)/1e3
}

func lockExclusive(f *os.File) error { return flock(f, unix.LOCK_EX) }
func lockShared(f *os.File) error    { return flock(f, unix.LOCK_SH) }
func unlock(f *os.File) error        { return flock(f, unix.LOCK_UN) }

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

func limitReader(r io.Reader, n int64) io.Reader { return io.LimitReader(r, n) }
