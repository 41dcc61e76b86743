package boot

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Transport is how a disk is attached, which decides how it is detached.
type Transport string

// Transports. Only USB disks can be removed for good; virtio and NVMe are
// isolated by deleting their nodes; anything else cannot be detached.
const (
	TransportUSB    Transport = "usb"
	TransportVirtio Transport = "virtio"
	TransportNVMe   Transport = "nvme"
	TransportOther  Transport = "other"
)

// Partition is one candidate partition as sysfs and its disk describe it.
type Partition struct {
	Name     string // sysfs name, e.g. sda1
	DevName  string // DEVNAME from the uevent file
	PartN    int
	PartName string // GPT name (PARTNAME), may be empty
	Disk     string // parent disk's sysfs name, e.g. sda
	// DevPath is the partition's device path relative to the sysfs root,
	// e.g. /devices/pci0000:00/.../block/sda/sda1.
	DevPath  string
	PartUUID string // lower case; empty when unknown
	// PartUUIDErr says why PartUUID is empty.
	PartUUIDErr error
	Transport   Transport
	// USBDevice is the USB device (e.g. "2-1") whose remove file detaches
	// the disk; only for TransportUSB.
	USBDevice string
}

var (
	// ErrSysfs: the block class directory cannot be read at all.
	ErrSysfs = errors.New("cannot read sysfs block devices")

	candidateNameRE = regexp.MustCompile(`^(sd[a-z]+[0-9]+|vd[a-z]+[0-9]+|nvme[0-9]+n[0-9]+p[0-9]+|mmcblk[0-9]+p[0-9]+)$`)
	diskNameRE      = regexp.MustCompile(`^(sd[a-z]+|vd[a-z]+|nvme[0-9]+n[0-9]+|mmcblk[0-9]+)$`)
	usbBusRE        = regexp.MustCompile(`^usb[0-9]+$`)
	usbDeviceRE     = regexp.MustCompile(`^[0-9]+-[0-9]+(\.[0-9]+)*$`)
	virtioRE        = regexp.MustCompile(`^virtio[0-9]+$`)
)

// maxSysfsFile caps reads of small sysfs attribute files.
const maxSysfsFile = 4096

// ScanPartitions lists the ESP candidates under <SysRoot>/class/block:
// partitions named sd*, vd*, nvme*p*, mmcblk*p*, sorted by name. A partition
// whose details cannot be read is left out; its PARTUUID failing to read
// only leaves PartUUID empty (with PartUUIDErr).
func ScanPartitions(env Env) ([]Partition, error) {
	classDir := filepath.Join(env.SysRoot, "class", "block")
	entries, err := os.ReadDir(classDir)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSysfs, err)
	}
	var parts []Partition
	for _, e := range entries {
		name := e.Name()
		if !candidateNameRE.MatchString(name) {
			continue
		}
		p, err := readPartition(env, name)
		if err != nil {
			continue
		}
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].Name < parts[j].Name })
	return parts, nil
}

// readPartition fills a Partition from sysfs and the disk's partition table.
func readPartition(env Env, name string) (Partition, error) {
	link := filepath.Join(env.SysRoot, "class", "block", name)
	if _, err := os.Stat(filepath.Join(link, "partition")); err != nil {
		return Partition{}, err
	}
	ue, err := readUeventFile(filepath.Join(link, "uevent"))
	if err != nil {
		return Partition{}, err
	}
	if ue["DEVTYPE"] != "partition" || !candidateNameRE.MatchString(ue["DEVNAME"]) {
		return Partition{}, fmt.Errorf("%s: not a candidate partition", name)
	}
	p := Partition{Name: name, DevName: ue["DEVNAME"], PartName: ue["PARTNAME"]}
	if p.PartN, err = strconv.Atoi(ue["PARTN"]); err != nil || p.PartN < 1 {
		return Partition{}, fmt.Errorf("%s: bad PARTN", name)
	}
	root, err := filepath.EvalSymlinks(env.SysRoot)
	if err != nil {
		return Partition{}, err
	}
	real, err := filepath.EvalSymlinks(link)
	if err != nil {
		return Partition{}, err
	}
	rel, err := filepath.Rel(root, real)
	if err != nil || strings.HasPrefix(rel, "..") {
		return Partition{}, fmt.Errorf("%s: device path outside sysfs", name)
	}
	p.DevPath = "/" + filepath.ToSlash(rel)
	p.Disk = filepath.Base(filepath.Dir(real))
	if !diskNameRE.MatchString(p.Disk) {
		return Partition{}, fmt.Errorf("%s: parent %q is not a disk", name, p.Disk)
	}
	p.Transport, p.USBDevice = classifyTransport(p.Disk, filepath.Dir(p.DevPath))
	if v, ok := ue["PARTUUID"]; ok {
		p.PartUUID, p.PartUUIDErr = CanonicalUUID(v)
	} else {
		p.PartUUID, p.PartUUIDErr = diskPartUUID(env, p.Disk, p.PartN)
	}
	return p, nil
}

// diskPartUUID reads the partition table of /dev/<disk>.
func diskPartUUID(env Env, disk string, partN int) (string, error) {
	sector := 512
	if b, err := readSmallFile(filepath.Join(env.SysRoot, "class", "block", disk, "queue", "logical_block_size")); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			sector = n
		}
	}
	f, err := os.Open(filepath.Join(env.DevRoot, disk))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoPartUUID, err)
	}
	defer f.Close()
	return ReadPartUUID(f, sector, partN)
}

// classifyTransport looks at the disk's device path: a usbN bus followed by
// USB device directories means USB (the deepest one is the device to remove),
// a virtioN component virtio, an NVMe disk nvme.
func classifyTransport(disk, diskDevPath string) (Transport, string) {
	comps := strings.Split(strings.Trim(diskDevPath, "/"), "/")
	onUSB, usbDev := false, ""
	for _, c := range comps {
		switch {
		case usbBusRE.MatchString(c):
			onUSB = true
		case onUSB && usbDeviceRE.MatchString(c):
			usbDev = c
		}
	}
	if usbDev != "" {
		return TransportUSB, usbDev
	}
	for _, c := range comps {
		if virtioRE.MatchString(c) {
			return TransportVirtio, ""
		}
	}
	if strings.HasPrefix(disk, "nvme") {
		return TransportNVMe, ""
	}
	return TransportOther, ""
}

// readUeventFile parses a sysfs uevent file (KEY=VALUE lines).
func readUeventFile(path string) (map[string]string, error) {
	b, err := readSmallFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && k != "" {
			out[k] = v
		}
	}
	return out, nil
}

// readSmallFile reads at most maxSysfsFile bytes; larger is an error.
func readSmallFile(path string) ([]byte, error) {
	return readCapped(path, maxSysfsFile)
}

// errTooBig marks a file over its read cap.
var errTooBig = errors.New("file larger than its cap")

// readCapped reads path whole if it is at most max bytes.
func readCapped(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: %w (%d bytes)", path, errTooBig, max)
	}
	return b, nil
}
