package boot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// ESP is the boot ESP that was found, still mounted read-only at MountPoint.
type ESP struct {
	Device   string // the partition's node, e.g. /dev/sda1
	Disk     string // the parent disk's name, e.g. sda
	DevPath  string // sysfs device path of the partition
	PartUUID string
	// FirmwarePartUUID and FirmwareSource are what the firmware reported
	// (empty when it reported nothing usable); FirmwareNote says why not.
	FirmwarePartUUID string
	FirmwareSource   string
	FirmwareNote     string
	// FirmwareImageID is the loaded image's path as the firmware saw it.
	FirmwareImageID string
	MountPoint      string
	Transport       string
	USBDevice       string
}

var (
	// ErrNoESP: no partition carried the loader and the marker (contract:
	// not fatal, the boot continues without operator files).
	ErrNoESP = errors.New("boot ESP not found")
	// ErrAmbiguousESP: more than one partition looks like the boot ESP. A
	// second stick copying the first is an attack, so this halts.
	ErrAmbiguousESP = errors.New("more than one boot ESP")
	// ErrMountPoint: the mount point for a candidate cannot be made.
	ErrMountPoint = errors.New("cannot create ESP mount point")
)

// ESPMountFlags are the flags every candidate is mounted with.
const ESPMountFlags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME

// maxMarkerBytes caps the marker read; only its first line matters.
const maxMarkerBytes = 512

// FindESP looks for the boot ESP for up to spec.Rounds rounds. Each round
// mounts every candidate partition read-only and keeps the one holding
// spec.Loader and the marker line; when the firmware reports the boot
// partition, only a candidate with that PARTUUID is even mounted. Between
// scans it waits up to spec.RoundSeconds for a new block device. It
// returns the ESP still mounted; every other candidate is unmounted again.
// progress receives one human line per notable step; it may be nil.
func FindESP(ctx context.Context, env Env, spec ESPSpec, progress func(string)) (*ESP, error) {
	say := func(format string, a ...any) {
		if progress != nil {
			progress(fmt.Sprintf(format, a...))
		}
	}
	fw := firmwareBinding(env, say)
	if err := os.MkdirAll(env.MountBase, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMountPoint, err)
	}
	// The search lasts (Rounds-1) x RoundSeconds: a uevent for a new block
	// device ends a wait early and triggers another scan, but the time, not
	// the number of wake-ups, bounds the search. Counting wake-ups would let
	// uevents queued before the first scan (the disks already there) use up
	// the rounds within milliseconds.
	rounds := max(spec.Rounds, 1)
	roundWait := time.Duration(max(spec.RoundSeconds, 0)) * time.Second
	deadline := time.Now().Add(time.Duration(rounds-1) * roundWait)
	var lastScanErr error
	for scan := 1; ; scan++ {
		parts, err := ScanPartitions(env)
		if err != nil {
			lastScanErr = err
			say("scan %d: %v", scan, err)
		}
		found, err := checkCandidates(env, spec, parts, fw, say)
		if err != nil {
			return nil, err
		}
		if found != nil {
			say("boot ESP is %s (%s)", found.Device, found.Transport)
			return found, nil
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			break
		}
		wait := min(roundWait, remaining)
		say("scan %d: no boot ESP among %d partitions; waiting up to %s for a new disk", scan, len(parts), wait.Round(time.Millisecond))
		if err := awaitBlockDevice(ctx, env, wait); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNoESP, err)
		}
	}
	if lastScanErr != nil {
		return nil, fmt.Errorf("%w after %s: %w", ErrNoESP, time.Duration(rounds-1)*roundWait, lastScanErr)
	}
	return nil, fmt.Errorf("%w after %s of searching", ErrNoESP, time.Duration(rounds-1)*roundWait)
}

// firmwareFacts is what the firmware said about the boot partition.
type firmwareFacts struct {
	partUUID, source, note, imageID string
}

func firmwareBinding(env Env, say func(string, ...any)) firmwareFacts {
	dir := filepath.Join(env.SysRoot, "firmware", "efi", "efivars")
	var fw firmwareFacts
	fw.imageID = FirmwareImageIdentifier(dir)
	u, src, err := FirmwareBootPartUUID(dir)
	switch {
	case err == nil:
		fw.partUUID, fw.source = u, src
		say("firmware booted partition %s (%s)", u, src)
	case errors.Is(err, ErrNoFirmwareVar):
		fw.note = "firmware did not report the boot partition; any partition with the marker is accepted"
		say("%s", fw.note)
	default:
		// A malformed variable cannot bind anything; say so loudly.
		fw.source = src
		fw.note = fmt.Sprintf("firmware boot partition variable unusable (%v); any partition with the marker is accepted", err)
		say("%s", fw.note)
	}
	return fw
}

// checkCandidates runs one round. It returns the single match still
// mounted, nil when none matched, or an error when two matched or a
// non-matching candidate could not be unmounted.
func checkCandidates(env Env, spec ESPSpec, parts []Partition, fw firmwareFacts, say func(string, ...any)) (*ESP, error) {
	var matches []*ESP
	for _, p := range parts {
		if fw.partUUID != "" && p.PartUUID != fw.partUUID {
			if p.PartUUIDErr != nil {
				say("%s: skipped, PARTUUID unknown (%v)", p.Name, p.PartUUIDErr)
			} else {
				say("%s: skipped, not the partition the firmware booted", p.Name)
			}
			continue
		}
		mp := filepath.Join(env.MountBase, p.Name)
		if err := os.Mkdir(mp, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, unmountAll(env, matches, fmt.Errorf("%w: %v", ErrMountPoint, err))
		}
		dev := filepath.Join(env.DevRoot, p.DevName)
		if err := env.Mounter.Mount(dev, mp, "vfat", ESPMountFlags, ""); err != nil {
			say("%s: not mountable as vfat (%v)", p.Name, err)
			os.Remove(mp)
			continue
		}
		why := espMismatch(mp, spec)
		if why != "" {
			say("%s: %s", p.Name, why)
			if err := unmountCandidate(env, mp); err != nil {
				return nil, unmountAll(env, matches, err)
			}
			continue
		}
		matches = append(matches, &ESP{
			Device: dev, Disk: p.Disk, DevPath: p.DevPath, PartUUID: p.PartUUID,
			FirmwarePartUUID: fw.partUUID, FirmwareSource: fw.source,
			FirmwareNote: fw.note, FirmwareImageID: fw.imageID,
			MountPoint: mp, Transport: string(p.Transport), USBDevice: p.USBDevice,
		})
	}
	switch len(matches) {
	case 0:
		return nil, nil
	case 1:
		return matches[0], nil
	}
	var names []string
	for _, m := range matches {
		names = append(names, m.Device)
	}
	return nil, unmountAll(env, matches, fmt.Errorf("%w: %v", ErrAmbiguousESP, names))
}

// espMismatch says why the file system at root is not the ESP, or "".
func espMismatch(root string, spec ESPSpec) string {
	st, err := os.Lstat(filepath.Join(root, spec.Loader))
	if err != nil || !st.Mode().IsRegular() {
		return "no " + spec.Loader
	}
	mst, err := os.Lstat(filepath.Join(root, spec.MarkerFile))
	if err != nil || !mst.Mode().IsRegular() {
		return "no " + spec.MarkerFile
	}
	f, err := os.Open(filepath.Join(root, spec.MarkerFile))
	if err != nil {
		return "unreadable " + spec.MarkerFile
	}
	defer f.Close()
	buf, _ := io.ReadAll(io.LimitReader(f, maxMarkerBytes))
	line, _, _ := bytes.Cut(buf, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if string(line) != spec.MarkerLine {
		return spec.MarkerFile + " does not start with " + spec.MarkerLine
	}
	return ""
}

// unmountCandidate unmounts a candidate that is not (or no longer) wanted
// and removes its mount point. A lazy detach is the last resort: a stray
// mount of an untrusted file system must not outlive the scan.
func unmountCandidate(env Env, mp string) error {
	if err := env.Mounter.Unmount(mp, 0); err != nil {
		if err2 := env.Mounter.Unmount(mp, unix.MNT_DETACH); err2 != nil {
			return fmt.Errorf("%w: %s: %v", ErrStillMounted, mp, err)
		}
	}
	os.Remove(mp)
	return nil
}

// unmountAll unmounts every mounted match and returns cause joined with any
// unmount failure.
func unmountAll(env Env, mounted []*ESP, cause error) error {
	errs := []error{cause}
	for _, m := range mounted {
		if err := unmountCandidate(env, m.MountPoint); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// awaitBlockDevice is the named wait between rounds: it ends early when a
// block device appears, and otherwise after d. Only cancellation of ctx is
// an error.
func awaitBlockDevice(ctx context.Context, env Env, d time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if env.Uevents != nil {
		err := env.Uevents.WaitFor(wctx, "a new block device", IsBlockAdd)
		if err == nil || errors.Is(err, ErrWaitTimeout) {
			return ctx.Err()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// The uevent source failed; the round's deadline still bounds the wait.
	}
	<-wctx.Done()
	return ctx.Err()
}
