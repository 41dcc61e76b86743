package storage

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"inert/storage/luks2"
)

var (
	// ErrLeftUntouched: neither LUKS nor marked; nothing was written.
	ErrLeftUntouched = errors.New("zone partition left untouched")
	// ErrNoFilesystem: an opened volume without the fresh flag has no
	// filesystem; it is refused, never given a new one.
	ErrNoFilesystem = errors.New("zone volume has no filesystem and is not fresh")
	// ErrHeaderRefused: the LUKS2 header failed reading or the policy.
	ErrHeaderRefused = errors.New("zone LUKS2 header refused")
)

// Spec is how the appliance wants its zone volume (from the manifest;
// hyperbeam: label and mapper lapee-nonvolatile, mount
// /var/lib/lapee/nonvolatile).
type Spec struct {
	Label  string // LUKS2 and ext4 label
	Mapper string // dm name
	Mount  string // mount point
}

// MountFlags are the contract's noatime,nodev,nosuid,noexec.
const MountFlags = unix.MS_NOATIME | unix.MS_NODEV | unix.MS_NOSUID | unix.MS_NOEXEC

// State is the zone's entry in evidence.json "zones".
type State struct {
	// Zone is the manifest's name for the zone (its GPT name or ring
	// selection), so a refused zone without a partition is still named.
	Zone                string `json:"zone,omitempty"`
	Partition           string `json:"partition"`
	PartName            string `json:"partname"`
	Label               string `json:"label,omitempty"`
	Mapper              string `json:"mapper,omitempty"`
	Mount               string `json:"mount,omitempty"`
	FormattedLUKS       bool   `json:"formatted-luks"`
	FormattedFilesystem bool   `json:"formatted-filesystem"`
	// VolumeID is read from the filesystem's VolumeIDFile once mounted
	// (the LUKS UUID inert formatted it with); before that, and for a
	// refused volume, it is the header's UUID. VolumeIDError says why the
	// file gave none (e.g. a volume formatted by cryptsetup).
	VolumeID      string `json:"volume-id,omitempty"`
	VolumeIDError string `json:"volume-id-error,omitempty"`
	KeySource     string `json:"key-source,omitempty"`
	Reason        string `json:"reason,omitempty"`
}

// Provisioner opens or formats a zone partition. Every dependency on the
// system is an interface so the whole decision path runs in unit tests.
type Provisioner struct {
	Devices DeviceOpener
	Mapper  Mapper
	Mounter Mounter
	FS      Filesystems
	// Policy judges headers; luks2.DefaultPolicy when zero.
	Policy *luks2.Policy
	// Rand supplies the volume key; crypto/rand when nil.
	Rand io.Reader
	// Progress, when set, hears each step that writes to the disk (before
	// and after), so the boot can report them and tests can cut the power
	// between them. Its words are ProgressFormatting etc.
	Progress func(word string)
	// Now is the clock for the volume-id file; time.Now when nil.
	Now func() time.Time
}

// The progress words Provision reports, in order.
const (
	ProgressFormatting = "luks-formatting"
	ProgressFormatted  = "luks-formatted"
	ProgressMkfs       = "mkfs-running"
	ProgressMkfsDone   = "mkfs-done"
	ProgressMounted    = "mounted"
	ProgressVolumeID   = "volume-id-written"
	ProgressFreshClear = "fresh-flag-cleared"
)

func (p *Provisioner) progress(word string) {
	if p.Progress != nil {
		p.Progress(word)
	}
}

// Provision runs the marker gate on part and then formats, opens, makes the
// filesystem (only on a fresh volume) and mounts; a fresh volume then gets
// its VolumeIDFile and loses the fresh flag, in that order. The returned
// State is filled as far as it got, with Reason set on refusal; a mounted
// volume's VolumeID comes from its VolumeIDFile.
func (p *Provisioner) Provision(ctx context.Context, part Partition, spec Spec, src KeySource) (State, error) {
	st := State{Partition: part.DevPath, PartName: part.PartName, KeySource: src.Name()}
	fail := func(err error) (State, error) {
		st.Reason = err.Error()
		return st, err
	}
	dev, size, err := p.Devices.OpenDevice(part.DevPath)
	if err != nil {
		return fail(fmt.Errorf("open %s: %w", part.DevPath, err))
	}
	defer dev.Close()

	decision, err := Probe(dev)
	if err != nil {
		return fail(err)
	}
	switch decision.Action {
	case Leave:
		return fail(fmt.Errorf("%w: %s", ErrLeftUntouched, decision.Reason))
	case Format:
		p.progress(ProgressFormatting)
		if err := p.format(ctx, dev, size, spec, src); err != nil {
			return fail(err)
		}
		st.FormattedLUKS = true
		p.progress(ProgressFormatted)
	}

	snap, err := p.readChecked(dev, size)
	if err != nil {
		return fail(err)
	}
	st.Label, st.VolumeID = snap.Header.Label, snap.Header.UUID

	node, err := p.unlockAndMap(ctx, snap, part, spec, src)
	if err != nil {
		return fail(err)
	}
	st.Mapper = node
	unmap := func() { _ = p.Mapper.Unmap(spec.Mapper) }

	fresh := snap.IsFresh()
	if fresh {
		// Fresh means the service has never been given this volume, so a
		// filesystem half-made before a power cut is simply made again.
		p.progress(ProgressMkfs)
		if err := p.FS.MakeFS(ctx, node, spec.Label); err != nil {
			unmap()
			return fail(err)
		}
		p.progress(ProgressMkfsDone)
	} else {
		ok, err := p.FS.HasFS(node)
		if err != nil || !ok {
			unmap()
			return fail(fmt.Errorf("%w (%v)", ErrNoFilesystem, err))
		}
	}
	if err := p.Mounter.Mount(node, spec.Mount, "ext4", MountFlags, ""); err != nil {
		unmap()
		return fail(fmt.Errorf("mount %s on %s: %w", node, spec.Mount, err))
	}
	p.progress(ProgressMounted)
	unmount := func() { _ = p.Mounter.Unmount(spec.Mount); unmap() }
	if fresh {
		// The id goes in before the fresh flag comes off: a cut between the
		// two makes the filesystem (and the id) again, so a volume without
		// the flag always has its id.
		id := p.volumeID(snap, part, src)
		if err := WriteVolumeID(spec.Mount, id); err != nil {
			unmount()
			return fail(err)
		}
		p.progress(ProgressVolumeID)
		if err := luks2.ClearFresh(dev, snap); err != nil {
			unmount()
			return fail(fmt.Errorf("clear fresh flag: %w", err))
		}
		p.progress(ProgressFreshClear)
		st.FormattedFilesystem = true
	}
	st.Mount = spec.Mount
	// The evidence's volume-id is what the filesystem says; a volume made
	// elsewhere (cryptsetup) has none and is still opened.
	id, err := ReadVolumeID(spec.Mount, snap.Header.UUID)
	st.VolumeID = id.ID
	if err != nil {
		st.VolumeIDError = err.Error()
	}
	return st, nil
}

// volumeID is the volume-id file of a volume being provisioned.
func (p *Provisioner) volumeID(snap *luks2.Snapshot, part Partition, src KeySource) VolumeID {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	seg := snap.Meta.Segments["0"]
	return VolumeID{
		ID: snap.Header.UUID, Label: snap.Header.Label, Partition: part.Name, PartName: part.PartName,
		KeySource: src.Name(), Cipher: seg.Encryption, KeyBits: keyBits(snap), Created: now(),
	}
}

// keyBits is the volume key size of the data segment's digest, in bits.
func keyBits(snap *luks2.Snapshot) int {
	bits := 0
	for _, ks := range snap.Meta.Keyslots {
		bits = ks.KeySize * 8 // Check guarantees every keyslot holds the segment's key size
	}
	return bits
}

// format writes a new LUKS2 volume with a random 512-bit key, the source's
// keyslot and tokens, and the fresh flag.
func (p *Provisioner) format(ctx context.Context, dev BlockDevice, size uint64, spec Spec, src KeySource) error {
	enr, err := src.Enroll(ctx)
	if err != nil {
		return fmt.Errorf("%w: enroll %s: %w", ErrKeySource, src.Name(), err)
	}
	defer lockKey(enr.Passphrase)()
	key := make([]byte, 64)
	defer lockKey(key)()
	rnd := p.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	if _, err := io.ReadFull(rnd, key); err != nil {
		return fmt.Errorf("volume key: %w", err)
	}
	_, err = luks2.Format(dev, size, key, luks2.FormatOptions{
		Label:    spec.Label,
		Keyslots: []luks2.KeyslotSpec{{Passphrase: enr.Passphrase, KDF: enr.KDF}},
		Tokens:   enr.Tokens,
		Fresh:    true,
	})
	if err != nil {
		return fmt.Errorf("format: %w", err)
	}
	return nil
}

// readChecked reads the snapshot, completes an interrupted header update,
// and applies the policy to what will be used.
func (p *Provisioner) readChecked(dev BlockDevice, size uint64) (*luks2.Snapshot, error) {
	policy := luks2.DefaultPolicy()
	if p.Policy != nil {
		policy = *p.Policy
	}
	snap, err := luks2.ReadSnapshot(dev, size)
	if errors.Is(err, luks2.ErrInterruptedUpdate) {
		if err := policy.Check(snap, size); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrHeaderRefused, err)
		}
		if err := luks2.Repair(dev, snap); err != nil {
			return nil, fmt.Errorf("%w: repair: %v", ErrHeaderRefused, err)
		}
		snap, err = luks2.ReadSnapshot(dev, size)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHeaderRefused, err)
	}
	if err := policy.Check(snap, size); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHeaderRefused, err)
	}
	return snap, nil
}

// unlockAndMap recovers the volume key from the checked snapshot and maps
// the data segment.
func (p *Provisioner) unlockAndMap(ctx context.Context, snap *luks2.Snapshot, part Partition, spec Spec, src KeySource) (string, error) {
	pass, err := src.Passphrase(ctx, snap.Meta)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrKeySource, src.Name(), err)
	}
	defer lockKey(pass)()
	key, _, err := snap.Unlock(pass)
	if err != nil {
		return "", fmt.Errorf("unlock %s: %w", part.DevPath, err)
	}
	defer lockKey(key)()
	seg := snap.Meta.Segments["0"] // Check guarantees exactly this one
	length := snap.DeviceSize - uint64(seg.Offset)
	if seg.Size != "dynamic" {
		n, err := strconv.ParseUint(seg.Size, 10, 64)
		if err != nil {
			return "", fmt.Errorf("%w: segment size %q", ErrHeaderRefused, seg.Size)
		}
		length = n
	}
	return p.Mapper.Map(MapSpec{
		Name: spec.Mapper, Backing: part.DevPath, Offset: uint64(seg.Offset), Length: length,
		SectorSize: uint64(seg.SectorSize), Cipher: seg.Encryption, Key: key, UUID: snap.Header.UUID,
	})
}
