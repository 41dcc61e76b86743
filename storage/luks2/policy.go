package luks2

import (
	"fmt"
	"sort"
	"strconv"
)

// Policy is what a LUKS2 header must satisfy before inert trusts it. An
// attacker who can write the disk can write any header; the policy makes sure
// such a header can at worst fail to open, never open with a key or cipher
// the attacker chose (cipher_null keyslots open with any passphrase), never
// make the opener allocate or compute without bound, and never point the
// mapping outside the partition.
type Policy struct {
	// MaxHeaderSize bounds hdr_size (binary header + JSON area).
	MaxHeaderSize uint64
	// PBKDF2 iteration bounds, for keyslots and the digest.
	MinPBKDF2Iterations, MaxPBKDF2Iterations int
	// Argon2 bounds: memory in KiB, time cost, lanes.
	MaxArgon2MemoryKiB, MaxArgon2Time, MaxArgon2CPUs int
}

// DefaultPolicy accepts every header inert writes and what cryptsetup 2.6
// writes by default (whose argon2 memory is capped at 1 GiB), and nothing with
// a weaker cipher.
func DefaultPolicy() Policy {
	return Policy{
		MaxHeaderSize:       64 << 10,
		MinPBKDF2Iterations: 1000,
		MaxPBKDF2Iterations: 1 << 24,
		MaxArgon2MemoryKiB:  1 << 20,
		MaxArgon2Time:       32,
		MaxArgon2CPUs:       16,
	}
}

// Check applies DefaultPolicy.
func Check(s *Snapshot, deviceSize uint64) error {
	return DefaultPolicy().Check(s, deviceSize)
}

// allowedFlags are the persistent flags the opener (luks.go) can honour.
var allowedFlags = map[string]bool{
	"allow-discards": true, "same-cpu-crypt": true, "submit-from-crypt-cpus": true,
	"no-read-workqueue": true, "no-write-workqueue": true,
}

// Check judges the snapshot's authoritative header copy against p for a
// device of deviceSize bytes. Agreement of the two copies is ReadSnapshot's
// job; a snapshot it reported as interrupted is judged like any other.
func (p Policy) Check(s *Snapshot, deviceSize uint64) error {
	if s == nil || s.Meta == nil {
		return fmt.Errorf("%w: no header", ErrCorruptHeader)
	}
	m, hdr := s.Meta, s.Header.HeaderSize
	if hdr > p.MaxHeaderSize {
		return fmt.Errorf("%w: hdr_size %d above %d", ErrJSONSize, hdr, p.MaxHeaderSize)
	}
	if uint64(m.Config.JSONSize) != hdr-BinHeaderSize {
		return fmt.Errorf("%w: json_size %d for hdr_size %d", ErrJSONSize, m.Config.JSONSize, hdr)
	}
	if len(m.Config.Requirements) > 0 && string(m.Config.Requirements) != "{}" && string(m.Config.Requirements) != "[]" {
		return fmt.Errorf("%w: config requirements %s", ErrUnsupported, m.Config.Requirements)
	}
	for _, f := range m.Config.Flags {
		if !allowedFlags[f] {
			return fmt.Errorf("%w: config flag %q", ErrUnsupported, f)
		}
	}

	// Regions: [0, 2*hdr) headers, [2*hdr, 2*hdr+ks) keyslots, then data.
	ksStart := 2 * hdr
	ksSize := uint64(m.Config.KeyslotsSize)
	if ksSize > MaxKeyslotsSize || ksSize%areaAlign != 0 {
		return fmt.Errorf("%w: keyslots_size %d", ErrLayout, ksSize)
	}
	ksEnd := ksStart + ksSize
	if ksEnd > deviceSize {
		return fmt.Errorf("%w: keyslots area ends at %d, device has %d bytes", ErrAreaOutside, ksEnd, deviceSize)
	}

	keySize, err := p.checkSegment(m, ksEnd, deviceSize)
	if err != nil {
		return err
	}
	if err := p.checkDigest(m); err != nil {
		return err
	}
	if len(m.Keyslots) == 0 {
		return fmt.Errorf("%w: no keyslots", ErrLayout)
	}
	type span struct {
		id         string
		start, end uint64
	}
	var spans []span
	for id, ks := range m.Keyslots {
		if err := p.checkKeyslot(id, ks, keySize); err != nil {
			return err
		}
		off, size := uint64(ks.Area.Offset), uint64(ks.Area.Size)
		if off%areaAlign != 0 || off < ksStart || size > ksSize || off > ksEnd-size {
			return fmt.Errorf("%w: keyslot %s area [%d, +%d) outside keyslots area [%d, %d)", ErrAreaOutside, id, off, size, ksStart, ksEnd)
		}
		spans = append(spans, span{id, off, off + size})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			return fmt.Errorf("%w: keyslots %s and %s", ErrAreaOverlap, spans[i-1].id, spans[i].id)
		}
	}
	return nil
}

// checkSegment requires exactly one plain aes-xts-plain64 crypt segment
// after the keyslots area and inside the device; it returns its key size.
func (p Policy) checkSegment(m *Metadata, ksEnd, deviceSize uint64) (int, error) {
	if len(m.Segments) != 1 || m.Segments["0"] == nil {
		return 0, fmt.Errorf("%w: want exactly segment 0, have %d segments", ErrLayout, len(m.Segments))
	}
	seg := m.Segments["0"]
	if seg.Type != "crypt" {
		return 0, fmt.Errorf("%w: segment type %q", ErrLayout, seg.Type)
	}
	if seg.Encryption != CipherXTS {
		return 0, fmt.Errorf("%w: segment cipher %q", ErrCipher, seg.Encryption)
	}
	if len(seg.Integrity) > 0 || len(seg.Flags) > 0 || seg.IVTweak != 0 {
		return 0, fmt.Errorf("%w: segment integrity, flags or iv_tweak (reencryption)", ErrUnsupported)
	}
	sector := uint64(seg.SectorSize)
	if sector != 512 && sector != 4096 {
		return 0, fmt.Errorf("%w: sector_size %d", ErrLayout, seg.SectorSize)
	}
	off := uint64(seg.Offset)
	if off%areaAlign != 0 {
		return 0, fmt.Errorf("%w: segment offset %d not 4 KiB aligned", ErrLayout, off)
	}
	if off < ksEnd {
		return 0, fmt.Errorf("%w: segment at %d, keyslots end at %d", ErrAreaOverlap, off, ksEnd)
	}
	if off >= deviceSize {
		return 0, fmt.Errorf("%w: segment at %d, device has %d bytes", ErrAreaOutside, off, deviceSize)
	}
	length := deviceSize - off
	if seg.Size != "dynamic" {
		n, err := strconv.ParseUint(seg.Size, 10, 64)
		if err != nil || n == 0 || n > length {
			return 0, fmt.Errorf("%w: segment of %s bytes at %d, device has %d", ErrAreaOutside, seg.Size, off, deviceSize)
		}
		length = n
	}
	if length%sector != 0 {
		return 0, fmt.Errorf("%w: segment length %d not a multiple of sector_size %d", ErrLayout, length, sector)
	}
	// The volume key size is the keyslots' key_size; the digest ties them.
	for _, ks := range m.Keyslots {
		return ks.KeySize, nil
	}
	return 0, nil
}

func (p Policy) checkDigest(m *Metadata) error {
	if len(m.Digests) != 1 {
		return fmt.Errorf("%w: want one digest, have %d", ErrLayout, len(m.Digests))
	}
	for id, d := range m.Digests {
		if d.Type != "pbkdf2" {
			return fmt.Errorf("%w: digest %s type %q", ErrKDF, id, d.Type)
		}
		h, err := afHash(d.Hash)
		if err != nil {
			return fmt.Errorf("%w: digest %s hash %q", ErrKDF, id, d.Hash)
		}
		if d.Iterations < p.MinPBKDF2Iterations || d.Iterations > p.MaxPBKDF2Iterations {
			return fmt.Errorf("%w: digest %s iterations %d", ErrKDF, id, d.Iterations)
		}
		if len(d.Salt) < 16 || len(d.Digest) != h().Size() {
			return fmt.Errorf("%w: digest %s salt %d / digest %d bytes", ErrKDF, id, len(d.Salt), len(d.Digest))
		}
		if len(d.Segments) != 1 || d.Segments[0] != "0" || len(d.Keyslots) != len(m.Keyslots) {
			return fmt.Errorf("%w: digest %s must cover segment 0 and every keyslot", ErrLayout, id)
		}
	}
	return nil
}

func (p Policy) checkKeyslot(id string, ks *Keyslot, keySize int) error {
	if ks.Type != "luks2" {
		return fmt.Errorf("%w: keyslot %s type %q", ErrUnsupported, id, ks.Type)
	}
	if ks.KeySize != 32 && ks.KeySize != 64 {
		return fmt.Errorf("%w: keyslot %s volume key %d bytes (want 32 or 64 for AES-XTS)", ErrKeySize, id, ks.KeySize)
	}
	if ks.KeySize != keySize {
		return fmt.Errorf("%w: keyslot %s key %d bytes, others %d", ErrKeySize, id, ks.KeySize, keySize)
	}
	if ks.Area.Type != "raw" || ks.Area.Encryption != CipherXTS {
		return fmt.Errorf("%w: keyslot %s area %q %q", ErrCipher, id, ks.Area.Type, ks.Area.Encryption)
	}
	if ks.Area.KeySize != 32 && ks.Area.KeySize != 64 {
		return fmt.Errorf("%w: keyslot %s area key %d bytes", ErrKeySize, id, ks.Area.KeySize)
	}
	if ks.AF.Type != "luks1" || ks.AF.Stripes != Stripes {
		return fmt.Errorf("%w: keyslot %s AF %q/%d", ErrUnsupported, id, ks.AF.Type, ks.AF.Stripes)
	}
	if _, err := afHash(ks.AF.Hash); err != nil {
		return fmt.Errorf("keyslot %s AF: %w", id, err)
	}
	if uint64(ks.Area.Size) < uint64(afSectors(ks.KeySize, Stripes)) {
		return fmt.Errorf("%w: keyslot %s area of %d bytes", ErrAreaOutside, id, ks.Area.Size)
	}
	if ks.Priority != nil && (*ks.Priority < 0 || *ks.Priority > 2) {
		return fmt.Errorf("%w: keyslot %s priority %d", ErrLayout, id, *ks.Priority)
	}
	k := ks.KDF
	if len(k.Salt) < 16 {
		return fmt.Errorf("%w: keyslot %s salt of %d bytes", ErrKDF, id, len(k.Salt))
	}
	switch k.Type {
	case KDFPBKDF2:
		if _, err := afHash(k.Hash); err != nil || k.Time != 0 || k.Memory != 0 || k.CPUs != 0 {
			return fmt.Errorf("%w: keyslot %s pbkdf2 hash %q", ErrKDF, id, k.Hash)
		}
		if k.Iterations < p.MinPBKDF2Iterations || k.Iterations > p.MaxPBKDF2Iterations {
			return fmt.Errorf("%w: keyslot %s pbkdf2 iterations %d", ErrKDF, id, k.Iterations)
		}
	case KDFArgon2id, KDFArgon2i:
		if k.Hash != "" || k.Iterations != 0 {
			return fmt.Errorf("%w: keyslot %s argon2 with pbkdf2 fields", ErrKDF, id)
		}
		if k.Time < 1 || k.Time > p.MaxArgon2Time || k.CPUs < 1 || k.CPUs > p.MaxArgon2CPUs ||
			k.Memory < 8*k.CPUs || k.Memory > p.MaxArgon2MemoryKiB {
			return fmt.Errorf("%w: keyslot %s argon2 time %d memory %d KiB cpus %d", ErrKDF, id, k.Time, k.Memory, k.CPUs)
		}
	default:
		return fmt.Errorf("%w: keyslot %s KDF %q", ErrKDF, id, k.Type)
	}
	return nil
}
