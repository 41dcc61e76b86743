package storage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

var (
	// ErrBootDisk: a zone partition sits on the boot medium.
	ErrBootDisk = errors.New("zone partition on the boot medium")
	// ErrLateDisk: the disk appeared after the pre-lockdown snapshot.
	ErrLateDisk = errors.New("disk appeared after the USB lockdown")
	// ErrNoDiskSnapshot: discovery was called without the snapshot of disks
	// taken before lockdown; without it late disks cannot be told apart.
	ErrNoDiskSnapshot = errors.New("no pre-lockdown disk snapshot")
	// ErrSysfs: sysfs could not be read or holds something malformed.
	ErrSysfs = errors.New("sysfs block device")
)

// maxUevent caps what is read from one uevent file.
const maxUevent = 4096

// DiskSet is the set of whole-disk kernel names present at one moment.
type DiskSet map[string]bool

// SnapshotDisks lists the disks under root/sys/block. The worker takes it
// before the USB lockdown; a disk missing from it is refused later.
func SnapshotDisks(root string) (DiskSet, error) {
	entries, err := os.ReadDir(filepath.Join(root, "sys/block"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSysfs, err)
	}
	set := DiskSet{}
	for _, e := range entries {
		set[e.Name()] = true
	}
	return set, nil
}

// DiscoverOptions says which disks may hold zones.
type DiscoverOptions struct {
	// BootDisk is the kernel name of the boot medium's disk ("" if none).
	BootDisk string
	// Known is the pre-lockdown snapshot (SnapshotDisks); required.
	Known DiskSet
}

// Refusal is a zone-named partition that will not be used, and why.
type Refusal struct {
	Partition Partition
	Err       error
}

// Discovery is every zone-named partition found: usable ones and refused ones.
type Discovery struct {
	Zones   []Partition
	Refused []Refusal
}

// Discover finds partitions whose GPT name (PARTNAME= in uevent) starts with
// ZONE_ under root/sys/class/block. Invalid names, partitions on the boot
// disk and disks missing from the pre-lockdown snapshot are refused with a
// reason; other partitions are ignored.
func Discover(root string, opts DiscoverOptions) (Discovery, error) {
	if opts.Known == nil {
		return Discovery{}, ErrNoDiskSnapshot
	}
	classDir := filepath.Join(root, "sys/class/block")
	entries, err := os.ReadDir(classDir)
	if err != nil {
		return Discovery{}, fmt.Errorf("%w: %v", ErrSysfs, err)
	}
	var d Discovery
	for _, e := range entries {
		dir := filepath.Join(classDir, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "partition")); err != nil {
			continue // a whole disk
		}
		p, err := readPartition(dir, e.Name())
		if err != nil {
			return Discovery{}, err
		}
		if !IsZoneName(p.PartName) {
			continue
		}
		switch {
		case ValidateZoneName(p.PartName) != nil:
			d.Refused = append(d.Refused, Refusal{p, ValidateZoneName(p.PartName)})
		case opts.BootDisk != "" && p.Disk == opts.BootDisk:
			d.Refused = append(d.Refused, Refusal{p, fmt.Errorf("%w: %s is on %s", ErrBootDisk, p.Name, p.Disk)})
		case !opts.Known[p.Disk]:
			d.Refused = append(d.Refused, Refusal{p, fmt.Errorf("%w: %s", ErrLateDisk, p.Disk)})
		default:
			d.Zones = append(d.Zones, p)
		}
	}
	sort.Slice(d.Zones, func(i, j int) bool { return d.Zones[i].Name < d.Zones[j].Name })
	return d, nil
}

// readPartition reads one partition's sysfs directory. Its parent disk is
// the directory the class symlink resolves into.
func readPartition(dir, name string) (Partition, error) {
	f, err := os.Open(filepath.Join(dir, "uevent"))
	if err != nil {
		return Partition{}, fmt.Errorf("%w: %s: %v", ErrSysfs, name, err)
	}
	defer f.Close()
	text, err := io.ReadAll(io.LimitReader(f, maxUevent+1))
	if err != nil || len(text) > maxUevent {
		return Partition{}, fmt.Errorf("%w: %s uevent unreadable or above %d bytes", ErrSysfs, name, maxUevent)
	}
	env, err := ParseUevent(bytes.NewReader(text))
	if err != nil {
		return Partition{}, fmt.Errorf("%s: %w", name, err)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return Partition{}, fmt.Errorf("%w: %s: %v", ErrSysfs, name, err)
	}
	sizeText, err := os.ReadFile(filepath.Join(dir, "size"))
	if err != nil {
		return Partition{}, fmt.Errorf("%w: %s size: %v", ErrSysfs, name, err)
	}
	sectors, err := strconv.ParseUint(strings.TrimSpace(string(sizeText)), 10, 64)
	if err != nil || sectors > 1<<54 {
		return Partition{}, fmt.Errorf("%w: %s size %q", ErrSysfs, name, sizeText)
	}
	devName := env["DEVNAME"]
	if devName == "" {
		devName = name
	}
	if strings.Contains(devName, "/") || strings.Contains(devName, "..") {
		return Partition{}, fmt.Errorf("%w: %s DEVNAME %q", ErrSysfs, name, devName)
	}
	return Partition{
		Name:     name,
		Disk:     filepath.Base(filepath.Dir(real)),
		PartName: env["PARTNAME"],
		DevPath:  "/dev/" + devName,
		Size:     sectors * 512,
	}, nil
}

// ParseUevent parses KEY=VALUE lines. Malformed lines and duplicate keys are
// errors, so a name cannot be read two ways.
func ParseUevent(r io.Reader) (map[string]string, error) {
	env := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, maxUevent), maxUevent)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		k, v, ok := bytes.Cut(line, []byte("="))
		if !ok || len(k) == 0 || bytes.IndexByte(line, 0) >= 0 {
			return nil, fmt.Errorf("%w: malformed uevent line %q", ErrSysfs, line)
		}
		if _, dup := env[string(k)]; dup {
			return nil, fmt.Errorf("%w: duplicate uevent key %q", ErrSysfs, k)
		}
		env[string(k)] = string(v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: uevent: %v", ErrSysfs, err)
	}
	return env, nil
}
