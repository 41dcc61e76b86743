package luks2

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
)

// Snapshot is one read of a volume's metadata: both header copies verified
// and compared, and every keyslot's encrypted material copied into memory.
// Check judges it and Unlock uses it; neither touches the device again, so a
// header swapped on disk after the read changes nothing.
type Snapshot struct {
	// Header, Meta and JSON are the authoritative copy: the primary when the
	// copies agree, otherwise the one Repair would write (see ReadSnapshot).
	Header BinHeader
	Meta   *Metadata
	JSON   []byte
	// Damage says why the copies differ, when ReadSnapshot returned
	// ErrInterruptedUpdate; empty otherwise.
	Damage     string
	DeviceSize uint64
	// material maps keyslot id to its encrypted AF material.
	material map[string][]byte
}

// Cap on what the reader will allocate for one keyslot's material.
const maxKeyslotKeySize = 128

// headerCopy is one decoded header copy.
type headerCopy struct {
	bin  *BinHeader
	meta *Metadata
	text []byte
	err  error
}

// ReadSnapshot reads and verifies the metadata of the LUKS2 volume on dev,
// whose size is deviceSize. It fails with ErrNotLUKS2 when offset 0 does not
// hold a LUKS2 magic, ErrCorruptHeader or ErrTruncated when no copy is
// intact, and ErrHeaderMismatch when both copies are intact but disagree.
//
// The states a power cut during Rewrite can leave (backup written but not
// the primary; either copy torn mid-write while the other is intact) are
// returned as a usable snapshot of the newest intact copy together with an
// error wrapping ErrInterruptedUpdate: the caller Checks it and calls Repair.
func ReadSnapshot(dev io.ReaderAt, deviceSize uint64) (*Snapshot, error) {
	first := make([]byte, BinHeaderSize)
	if err := readFull(dev, first, 0, deviceSize); err != nil {
		return nil, err
	}
	size, err := peekHeaderSize(first, false)
	if err != nil {
		if !errors.Is(err, ErrCorruptHeader) {
			return nil, err
		}
		// A LUKS2 magic with an impossible hdr_size: maybe a torn primary;
		// the backup sits at one of the sizes the specification allows.
		size = 0
	}
	if size == 0 {
		size, err = findBackup(dev, deviceSize)
		if err != nil {
			return nil, err
		}
	}
	if 2*size > deviceSize {
		return nil, fmt.Errorf("%w: two %d-byte headers on a %d-byte device", ErrTruncated, size, deviceSize)
	}
	primary := readCopy(dev, size, false, deviceSize)
	backup := readCopy(dev, size, true, deviceSize)

	s := &Snapshot{DeviceSize: deviceSize, material: map[string][]byte{}}
	var damage error
	switch {
	case primary.err != nil && backup.err != nil:
		return nil, fmt.Errorf("primary header: %w (backup header: %v)", primary.err, backup.err)
	case primary.err != nil:
		s.use(backup)
		damage = fmt.Errorf("%w: primary header damaged (%v), backup intact", ErrInterruptedUpdate, primary.err)
	case backup.err != nil:
		s.use(primary)
		damage = fmt.Errorf("%w: backup header damaged (%v), primary intact", ErrInterruptedUpdate, backup.err)
	default:
		s.use(primary)
		p, b := primary.bin, backup.bin
		switch {
		case p.UUID != b.UUID || p.Label != b.Label || p.Subsystem != b.Subsystem:
			return nil, fmt.Errorf("%w: identity fields differ", ErrHeaderMismatch)
		case p.SeqID == b.SeqID && bytes.Equal(primary.text, backup.text):
		case p.SeqID == b.SeqID:
			return nil, fmt.Errorf("%w: same seqid %d, different metadata", ErrHeaderMismatch, p.SeqID)
		case b.SeqID == p.SeqID+1 && sameStructure(primary.meta, backup.meta):
			s.use(backup)
			damage = fmt.Errorf("%w: backup seqid %d is one update ahead of the primary", ErrInterruptedUpdate, b.SeqID)
		default:
			return nil, fmt.Errorf("%w: seqid primary %d backup %d", ErrHeaderMismatch, p.SeqID, b.SeqID)
		}
	}
	if err := s.readMaterial(dev); err != nil {
		return nil, err
	}
	if damage != nil {
		s.Damage = damage.Error()
	}
	return s, damage
}

func (s *Snapshot) use(c headerCopy) {
	s.Header, s.Meta, s.JSON = *c.bin, c.meta, c.text
	s.Header.Backup = false
	s.Header.HeaderOffset = 0
}

// findBackup looks for an intact backup magic at the offsets the
// specification allows when the primary's hdr_size cannot be trusted.
func findBackup(dev io.ReaderAt, deviceSize uint64) (uint64, error) {
	buf := make([]byte, BinHeaderSize)
	for size := uint64(MinHeaderSize); size <= MaxHeaderSize && 2*size <= deviceSize; size *= 2 {
		if readFull(dev, buf, size, deviceSize) != nil {
			break
		}
		if got, err := peekHeaderSize(buf, true); err == nil && got == size {
			return size, nil
		}
	}
	return 0, fmt.Errorf("%w: primary hdr_size unusable and no backup header found", ErrCorruptHeader)
}

// readCopy reads and decodes one header copy of hdr_size size.
func readCopy(dev io.ReaderAt, size uint64, backup bool, deviceSize uint64) headerCopy {
	off := uint64(0)
	if backup {
		off = size
	}
	area := make([]byte, size)
	if err := readFull(dev, area, off, deviceSize); err != nil {
		return headerCopy{err: err}
	}
	bin, err := decodeArea(area, backup)
	if err != nil {
		return headerCopy{err: err}
	}
	if bin.HeaderOffset != off {
		return headerCopy{err: fmt.Errorf("%w: hdr_offset %d at %d", ErrCorruptHeader, bin.HeaderOffset, off)}
	}
	m, text, err := decodeJSONArea(area[BinHeaderSize:])
	if err != nil {
		return headerCopy{err: err}
	}
	if uint64(m.Config.JSONSize) != size-BinHeaderSize {
		return headerCopy{err: fmt.Errorf("%w: json_size %d in a %d-byte header", ErrCorruptHeader, m.Config.JSONSize, size)}
	}
	return headerCopy{bin: bin, meta: m, text: text}
}

// readMaterial copies each keyslot's AF material, bounded by the device.
func (s *Snapshot) readMaterial(dev io.ReaderAt) error {
	ksSize := uint64(s.Meta.Config.KeyslotsSize)
	if ksSize > MaxKeyslotsSize {
		return fmt.Errorf("%w: keyslots_size %d", ErrLayout, ksSize)
	}
	for _, id := range s.KeyslotIDs() {
		ks := s.Meta.Keyslots[id]
		if ks.AF.Stripes != Stripes {
			return fmt.Errorf("%w: keyslot %s has %d AF stripes", ErrUnsupported, id, ks.AF.Stripes)
		}
		if ks.KeySize < 1 || ks.KeySize > maxKeyslotKeySize {
			return fmt.Errorf("%w: keyslot %s key_size %d", ErrKeySize, id, ks.KeySize)
		}
		n := uint64(afSectors(ks.KeySize, ks.AF.Stripes))
		off := uint64(ks.Area.Offset)
		if n > uint64(ks.Area.Size) || uint64(ks.Area.Size) > ksSize {
			return fmt.Errorf("%w: keyslot %s area size %d for %d bytes of material", ErrAreaOutside, id, ks.Area.Size, n)
		}
		if off > deviceLimit || off+n > s.DeviceSize {
			return fmt.Errorf("%w: keyslot %s area at %d", ErrTruncated, id, off)
		}
		buf := make([]byte, n)
		if err := readFull(dev, buf, off, s.DeviceSize); err != nil {
			return fmt.Errorf("keyslot %s: %w", id, err)
		}
		s.material[id] = buf
	}
	return nil
}

// deviceLimit keeps offset arithmetic far from overflow.
const deviceLimit = 1 << 62

// KeyslotIDs returns the keyslot ids in the order Unlock tries them:
// priority 2 (high) first, then normal; priority 0 (ignore) is left out.
func (s *Snapshot) KeyslotIDs() []string {
	var high, normal []string
	for id, ks := range s.Meta.Keyslots {
		switch {
		case ks.Priority != nil && *ks.Priority == 2:
			high = append(high, id)
		case ks.Priority == nil || *ks.Priority == 1:
			normal = append(normal, id)
		}
	}
	byNumber := func(ids []string) {
		sort.Slice(ids, func(i, j int) bool {
			a, _ := strconv.Atoi(ids[i])
			b, _ := strconv.Atoi(ids[j])
			return a < b
		})
	}
	byNumber(high)
	byNumber(normal)
	return append(high, normal...)
}

func readFull(dev io.ReaderAt, buf []byte, off, deviceSize uint64) error {
	if off > deviceLimit || off+uint64(len(buf)) > deviceSize {
		return fmt.Errorf("%w: need %d bytes at %d of %d", ErrTruncated, len(buf), off, deviceSize)
	}
	n, err := dev.ReadAt(buf, int64(off))
	if n == len(buf) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w: read %d of %d bytes at %d: %v", ErrTruncated, n, len(buf), off, err)
}
