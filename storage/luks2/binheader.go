package luks2

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"regexp"
)

// Sizes and offsets of the binary header, from the LUKS2 on-disk format.
const (
	// BinHeaderSize is the size of a binary header; the JSON area follows it.
	BinHeaderSize = 4096
	// DefaultHeaderSize is hdr_size as cryptsetup writes it by default: the
	// binary header plus a 12 KiB JSON area.
	DefaultHeaderSize = 16384
	// MinHeaderSize and MaxHeaderSize bound hdr_size per the specification.
	MinHeaderSize = 16384
	MaxHeaderSize = 4 << 20

	offMagic     = 0
	offVersion   = 6
	offHdrSize   = 8
	offSeqID     = 16
	offLabel     = 24
	offCsumAlg   = 72
	offSalt      = 104
	offUUID      = 168
	offSubsystem = 208
	offHdrOffset = 256
	offCsum      = 448

	lenLabel   = 48
	lenCsumAlg = 32
	lenSalt    = 64
	lenUUID    = 40
	lenCsum    = 64
)

var (
	magicPrimary = []byte("LUKS\xba\xbe")
	magicBackup  = []byte("SKUL\xba\xbe")
	uuidRE       = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// BinHeader is the fixed binary part of one header copy.
type BinHeader struct {
	Backup       bool // magic SKUL\xba\xbe (secondary copy) instead of LUKS\xba\xbe
	HeaderSize   uint64
	SeqID        uint64
	Label        string
	ChecksumAlg  string
	Salt         [lenSalt]byte
	UUID         string
	Subsystem    string
	HeaderOffset uint64
	Checksum     [lenCsum]byte
}

// IsLUKS reports whether b starts with a LUKS (version 1 or 2) primary magic.
// It is the test "is this partition LUKS" of the provisioning decision.
func IsLUKS(b []byte) bool {
	return len(b) >= len(magicPrimary) && bytes.Equal(b[:len(magicPrimary)], magicPrimary)
}

// putString writes s into a NUL-padded fixed field; it must leave one NUL.
func putString(dst []byte, s, field string) error {
	if len(s) >= len(dst) {
		return fmt.Errorf("%w: %s is %d bytes, at most %d", ErrBadOptions, field, len(s), len(dst)-1)
	}
	if bytes.IndexByte([]byte(s), 0) >= 0 {
		return fmt.Errorf("%w: %s contains NUL", ErrBadOptions, field)
	}
	copy(dst, s)
	return nil
}

// getString reads a NUL-terminated fixed field strictly: a terminator must
// exist and everything after it must be NUL too (nothing hidden).
func getString(src []byte, field string) (string, error) {
	end := bytes.IndexByte(src, 0)
	if end < 0 {
		return "", fmt.Errorf("%w: %s is not NUL-terminated", ErrCorruptHeader, field)
	}
	for _, c := range src[end:] {
		if c != 0 {
			return "", fmt.Errorf("%w: %s has bytes after its terminator", ErrCorruptHeader, field)
		}
	}
	return string(src[:end]), nil
}

// encodeArea fills area (HeaderSize bytes: binary header + JSON area, where
// the JSON area already holds the metadata) with h and its checksum, which
// covers the whole area with the checksum field zeroed.
func (h *BinHeader) encodeArea(area []byte) error {
	if uint64(len(area)) != h.HeaderSize {
		return fmt.Errorf("%w: area is %d bytes, header size %d", ErrBadOptions, len(area), h.HeaderSize)
	}
	b := area[:BinHeaderSize]
	clear(b)
	if h.Backup {
		copy(b[offMagic:], magicBackup)
	} else {
		copy(b[offMagic:], magicPrimary)
	}
	binary.BigEndian.PutUint16(b[offVersion:], 2)
	binary.BigEndian.PutUint64(b[offHdrSize:], h.HeaderSize)
	binary.BigEndian.PutUint64(b[offSeqID:], h.SeqID)
	for _, f := range []struct {
		dst        []byte
		val, field string
	}{
		{b[offLabel : offLabel+lenLabel], h.Label, "label"},
		{b[offCsumAlg : offCsumAlg+lenCsumAlg], h.ChecksumAlg, "checksum_alg"},
		{b[offUUID : offUUID+lenUUID], h.UUID, "uuid"},
		{b[offSubsystem : offSubsystem+lenLabel], h.Subsystem, "subsystem"},
	} {
		if err := putString(f.dst, f.val, f.field); err != nil {
			return err
		}
	}
	copy(b[offSalt:], h.Salt[:])
	binary.BigEndian.PutUint64(b[offHdrOffset:], h.HeaderOffset)
	sum := sha256.Sum256(area)
	clear(h.Checksum[:])
	copy(h.Checksum[:], sum[:])
	copy(b[offCsum:], h.Checksum[:])
	return nil
}

// peekHeaderSize reads magic, version and hdr_size from the first bytes of a
// header copy so the caller knows how much to read.
func peekHeaderSize(b []byte, backup bool) (uint64, error) {
	if len(b) < BinHeaderSize {
		return 0, fmt.Errorf("%w: binary header is %d bytes", ErrTruncated, len(b))
	}
	want := magicPrimary
	if backup {
		want = magicBackup
	}
	if !bytes.Equal(b[offMagic:offMagic+6], want) {
		if backup {
			return 0, fmt.Errorf("%w: backup header magic missing", ErrCorruptHeader)
		}
		return 0, fmt.Errorf("%w: magic missing", ErrNotLUKS2)
	}
	if v := binary.BigEndian.Uint16(b[offVersion:]); v != 2 {
		if backup {
			return 0, fmt.Errorf("%w: backup header version %d", ErrCorruptHeader, v)
		}
		return 0, fmt.Errorf("%w: version %d", ErrNotLUKS2, v)
	}
	size := binary.BigEndian.Uint64(b[offHdrSize:])
	if size < MinHeaderSize || size > MaxHeaderSize || size&(size-1) != 0 {
		return 0, fmt.Errorf("%w: hdr_size %d is not a power of two in [%d, %d]", ErrCorruptHeader, size, MinHeaderSize, MaxHeaderSize)
	}
	return size, nil
}

// decodeArea parses and verifies one header copy: area must be exactly the
// hdr_size bytes named by its own binary header.
func decodeArea(area []byte, backup bool) (*BinHeader, error) {
	size, err := peekHeaderSize(area, backup)
	if err != nil {
		return nil, err
	}
	if uint64(len(area)) != size {
		return nil, fmt.Errorf("%w: header area is %d bytes, hdr_size %d", ErrTruncated, len(area), size)
	}
	b := area[:BinHeaderSize]
	h := &BinHeader{
		Backup:       backup,
		HeaderSize:   size,
		SeqID:        binary.BigEndian.Uint64(b[offSeqID:]),
		HeaderOffset: binary.BigEndian.Uint64(b[offHdrOffset:]),
	}
	copy(h.Salt[:], b[offSalt:offSalt+lenSalt])
	copy(h.Checksum[:], b[offCsum:offCsum+lenCsum])
	fields := []struct {
		dst   *string
		src   []byte
		field string
	}{
		{&h.Label, b[offLabel : offLabel+lenLabel], "label"},
		{&h.ChecksumAlg, b[offCsumAlg : offCsumAlg+lenCsumAlg], "checksum_alg"},
		{&h.UUID, b[offUUID : offUUID+lenUUID], "uuid"},
		{&h.Subsystem, b[offSubsystem : offSubsystem+lenLabel], "subsystem"},
	}
	for _, f := range fields {
		if *f.dst, err = getString(f.src, f.field); err != nil {
			return nil, err
		}
	}
	if h.ChecksumAlg != "sha256" {
		return nil, fmt.Errorf("%w: checksum algorithm %q", ErrUnsupported, h.ChecksumAlg)
	}
	if !uuidRE.MatchString(h.UUID) {
		return nil, fmt.Errorf("%w: uuid %q", ErrCorruptHeader, h.UUID)
	}
	// The checksum covers the area with its own field zeroed; hash a copy so
	// the caller's bytes stay exactly as read.
	sum := sha256.New()
	sum.Write(area[:offCsum])
	sum.Write(make([]byte, lenCsum))
	sum.Write(area[offCsum+lenCsum:])
	if !bytes.Equal(sum.Sum(nil), h.Checksum[:sha256.Size]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorruptHeader)
	}
	for _, c := range h.Checksum[sha256.Size:] {
		if c != 0 {
			return nil, fmt.Errorf("%w: checksum field has trailing bytes", ErrCorruptHeader)
		}
	}
	return h, nil
}
