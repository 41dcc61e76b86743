package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
)

// DiskRecordName is the run-dir file where the worker leaves the disks it
// saw before the USB lockdown and the boot disk, for `inert zone open`,
// which runs later and cannot take that snapshot itself.
const DiskRecordName = "zone-disks.json"

// ErrDiskRecord: the disk record is missing or malformed.
var ErrDiskRecord = errors.New("zone disk record unusable")

const maxDiskRecord = 64 << 10

// DiskRecord is the JSON form of DiscoverOptions.
type DiskRecord struct {
	BootDisk string   `json:"boot_disk"`
	Known    []string `json:"known"`
}

// Record turns options into their record (disks sorted).
func (o DiscoverOptions) Record() DiskRecord {
	r := DiskRecord{BootDisk: o.BootDisk, Known: []string{}}
	for d := range o.Known {
		r.Known = append(r.Known, d)
	}
	sort.Strings(r.Known)
	return r
}

// ParseDiskRecord reads a record back into DiscoverOptions.
func ParseDiskRecord(r io.Reader) (DiscoverOptions, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxDiskRecord+1))
	if err != nil || len(b) > maxDiskRecord {
		return DiscoverOptions{}, fmt.Errorf("%w: unreadable or above %d bytes", ErrDiskRecord, maxDiskRecord)
	}
	var rec DiskRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return DiscoverOptions{}, fmt.Errorf("%w: %v", ErrDiskRecord, err)
	}
	if rec.Known == nil {
		return DiscoverOptions{}, fmt.Errorf("%w: no known disks", ErrDiskRecord)
	}
	opts := DiscoverOptions{BootDisk: rec.BootDisk, Known: DiskSet{}}
	for _, d := range rec.Known {
		opts.Known[d] = true
	}
	return opts, nil
}

// ReadDiskRecord reads the record file at path.
func ReadDiskRecord(path string) (DiscoverOptions, error) {
	f, err := os.Open(path)
	if err != nil {
		return DiscoverOptions{}, fmt.Errorf("%w: %v", ErrDiskRecord, err)
	}
	defer f.Close()
	return ParseDiskRecord(f)
}
