package demo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// VisitsFile is the demo's one file in the zone volume: how many times the
// service has started on it. It survives reboots only if the zone does.
const VisitsFile = "visits"

// ErrNoZone: the zone directory is not a mounted volume (so nothing is
// written: the counter would silently land on the tmpfs root).
var ErrNoZone = errors.New("zone directory is not a mount point")

// ZoneEvidence is the demo's zone file as evidence shows it.
type ZoneEvidence struct {
	Dir    string `json:"dir"`
	Visits int    `json:"visits"`
}

// CountVisit adds one to dir/visits, durably (temp file, fsync, rename,
// fsync of the directory), and returns the new count. dir must be a mount
// point.
func CountVisit(dir string) (int, error) {
	if !isMountPoint(dir) {
		return 0, fmt.Errorf("%w: %s", ErrNoZone, dir)
	}
	n, err := readVisits(dir)
	if err != nil {
		return 0, err
	}
	n++
	tmp := filepath.Join(dir, VisitsFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	_, err = f.WriteString(strconv.Itoa(n) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, VisitsFile))
	}
	if err != nil {
		return 0, err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return n, nil
}

// readVisits reads the counter; a missing file is zero.
func readVisits(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, VisitsFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("zone visits file holds %q", b)
	}
	return n, nil
}

// isMountPoint: dir is on another device than its parent.
func isMountPoint(dir string) bool {
	var a, b syscall.Stat_t
	if syscall.Stat(dir, &a) != nil || syscall.Stat(filepath.Dir(filepath.Clean(dir)), &b) != nil {
		return false
	}
	return a.Dev != b.Dev
}

// zoneEvidence reads the counter for evidence; nil without a zone.
func (s *Server) zoneEvidence() *ZoneEvidence {
	if s.ZoneDir == "" || !isMountPoint(s.ZoneDir) {
		return nil
	}
	n, err := readVisits(s.ZoneDir)
	if err != nil {
		return nil
	}
	return &ZoneEvidence{Dir: s.ZoneDir, Visits: n}
}
