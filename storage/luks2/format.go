package luks2

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// Layout constants of volumes inert writes.
const (
	// DefaultDataOffset is cryptsetup's default data offset.
	DefaultDataOffset = 16 << 20
	// SmallDataOffset is used on devices below SmallDeviceLimit.
	SmallDataOffset  = 4 << 20
	SmallDeviceLimit = 64 << 20
	// MinDataSize is the least room for data a volume must leave.
	MinDataSize = 1 << 20
	// MaxKeyslotsSize is the largest keyslots area (cryptsetup's limit).
	MaxKeyslotsSize = 128 << 20
	// DigestIterations is the PBKDF2 count of the volume-key digest: the
	// specification's floor; the volume key is 512 random bits.
	DigestIterations = 1000
	// areaAlign aligns keyslot areas, as cryptsetup does.
	areaAlign = 4096
	saltSize  = 32
)

// KeyslotSpec is one keyslot to create: the passphrase (a sealed secret or
// something typed) and its KDF (the writer fills in the salt).
type KeyslotSpec struct {
	Passphrase []byte
	KDF        KDF
}

// FormatOptions says what Format writes. Zero values take the documented
// defaults.
type FormatOptions struct {
	Label     string
	Subsystem string
	// UUID is random when empty.
	UUID string
	// SectorSize of the data segment: 512 (default) or 4096.
	SectorSize int
	// DataOffset in bytes; 0 picks DefaultDataOffset or, below
	// SmallDeviceLimit, SmallDataOffset.
	DataOffset uint64
	// Keyslots get ids 0, 1, ... in order; at least one is required.
	Keyslots []KeyslotSpec
	// Tokens are JSON objects with at least "type" and "keyslots"; they get
	// the next free ids after the fresh token.
	Tokens []json.RawMessage
	// Fresh adds the fresh token (see FreshTokenType).
	Fresh bool
	// Rand supplies salts, stripes and the UUID; crypto/rand when nil.
	Rand io.Reader
}

// Layout is a volume header built in memory, ready to be written.
type Layout struct {
	Meta    *Metadata
	Primary []byte // hdr_size bytes: binary header + JSON area
	Backup  []byte
	// Areas are the encrypted keyslot areas, by offset.
	Areas []AreaBytes
}

// AreaBytes is one keyslot area's bytes at its device offset.
type AreaBytes struct {
	Offset uint64
	Bytes  []byte
}

// Build lays out a new LUKS2 volume for volumeKey (32 or 64 bytes: AES-128-
// or AES-256-XTS) on a device of deviceSize bytes.
func Build(volumeKey []byte, deviceSize uint64, opts FormatOptions) (*Layout, error) {
	rnd := opts.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	if len(volumeKey) != 32 && len(volumeKey) != 64 {
		return nil, fmt.Errorf("%w: volume key of %d bytes (want 32 or 64)", ErrBadOptions, len(volumeKey))
	}
	if len(opts.Keyslots) == 0 || len(opts.Keyslots) > MaxKeyslots {
		return nil, fmt.Errorf("%w: %d keyslots", ErrBadOptions, len(opts.Keyslots))
	}
	sector := opts.SectorSize
	if sector == 0 {
		sector = SectorSize
	}
	if sector != 512 && sector != 4096 {
		return nil, fmt.Errorf("%w: sector size %d", ErrBadOptions, sector)
	}
	offset := opts.DataOffset
	if offset == 0 {
		offset = DefaultDataOffset
		if deviceSize < SmallDeviceLimit {
			offset = SmallDataOffset
		}
	}
	const hdrSize = DefaultHeaderSize
	if offset%areaAlign != 0 || offset <= 2*hdrSize || offset-2*hdrSize > MaxKeyslotsSize {
		return nil, fmt.Errorf("%w: data offset %d", ErrBadOptions, offset)
	}
	if deviceSize < offset+MinDataSize || deviceSize%uint64(sector) != 0 {
		return nil, fmt.Errorf("%w: %d bytes for data offset %d and sector %d", ErrDeviceTooSmall, deviceSize, offset, sector)
	}
	uuid := opts.UUID
	if uuid == "" {
		var err error
		if uuid, err = randomUUID(rnd); err != nil {
			return nil, err
		}
	}
	if !uuidRE.MatchString(uuid) {
		return nil, fmt.Errorf("%w: uuid %q", ErrBadOptions, uuid)
	}

	m := &Metadata{
		Keyslots: map[string]*Keyslot{},
		Tokens:   map[string]json.RawMessage{},
		Segments: map[string]*Segment{"0": {
			Type: "crypt", Offset: U64(offset), Size: "dynamic", IVTweak: 0,
			Encryption: CipherXTS, SectorSize: sector,
		}},
		Digests: map[string]*Digest{},
		Config: Config{
			JSONSize:     U64(hdrSize - BinHeaderSize),
			KeyslotsSize: U64(offset - 2*hdrSize),
		},
	}
	l := &Layout{Meta: m}
	next := uint64(2 * hdrSize)
	var ids []string
	for i, spec := range opts.Keyslots {
		id := strconv.Itoa(i)
		ks, area, err := buildKeyslot(volumeKey, spec, next, rnd)
		if err != nil {
			return nil, fmt.Errorf("keyslot %s: %w", id, err)
		}
		next += uint64(ks.Area.Size)
		if next > offset {
			return nil, fmt.Errorf("%w: keyslots do not fit below data offset %d", ErrBadOptions, offset)
		}
		m.Keyslots[id] = ks
		l.Areas = append(l.Areas, area)
		ids = append(ids, id)
	}
	dig, err := newDigest(volumeKey, rnd)
	if err != nil {
		return nil, err
	}
	dig.Keyslots, dig.Segments = ids, []string{"0"}
	m.Digests["0"] = dig

	tokens := opts.Tokens
	if opts.Fresh {
		tokens = append([]json.RawMessage{freshToken()}, tokens...)
	}
	for i, raw := range tokens {
		if _, err := ParseToken(raw); err != nil {
			return nil, fmt.Errorf("%w: token %d: %v", ErrBadOptions, i, err)
		}
		m.Tokens[strconv.Itoa(i)] = append(json.RawMessage(nil), raw...)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadOptions, err)
	}

	bin := BinHeader{
		HeaderSize: hdrSize, SeqID: 1, Label: opts.Label, ChecksumAlg: "sha256",
		UUID: uuid, Subsystem: opts.Subsystem,
	}
	if l.Primary, l.Backup, err = encodeHeaders(bin, m, rnd); err != nil {
		return nil, err
	}
	return l, nil
}

// buildKeyslot derives the area key, AF-splits and encrypts the volume key.
func buildKeyslot(volumeKey []byte, spec KeyslotSpec, offset uint64, rnd io.Reader) (*Keyslot, AreaBytes, error) {
	kdf := spec.KDF
	switch kdf.Type {
	case KDFPBKDF2, KDFArgon2id:
	default:
		return nil, AreaBytes{}, fmt.Errorf("%w: KDF %q (write pbkdf2 or argon2id)", ErrBadOptions, kdf.Type)
	}
	kdf.Salt = make([]byte, saltSize)
	if _, err := io.ReadFull(rnd, kdf.Salt); err != nil {
		return nil, AreaBytes{}, fmt.Errorf("keyslot salt: %w", err)
	}
	// The keyslot area is encrypted with AES-256-XTS whatever the volume
	// key size: a 64-byte area key.
	const areaKeySize = 64
	areaKey, err := kdf.derive(spec.Passphrase, areaKeySize)
	if err != nil {
		return nil, AreaBytes{}, fmt.Errorf("%w: %v", ErrBadOptions, err)
	}
	defer clear(areaKey)
	stripes, err := afSplit(volumeKey, Stripes, sha256.New, rnd)
	if err != nil {
		return nil, AreaBytes{}, err
	}
	material := make([]byte, afSectors(len(volumeKey), Stripes))
	copy(material, stripes)
	clear(stripes)
	if err := cryptArea(CipherXTS, areaKey, material, true); err != nil {
		return nil, AreaBytes{}, err
	}
	size := (uint64(len(material)) + areaAlign - 1) / areaAlign * areaAlign
	ks := &Keyslot{
		Type:    "luks2",
		KeySize: len(volumeKey),
		AF:      AF{Type: "luks1", Stripes: Stripes, Hash: "sha256"},
		Area:    Area{Type: "raw", Offset: U64(offset), Size: U64(size), Encryption: CipherXTS, KeySize: areaKeySize},
		KDF:     kdf,
	}
	return ks, AreaBytes{Offset: offset, Bytes: material}, nil
}

// newDigest makes the PBKDF2-SHA256 digest of the volume key.
func newDigest(volumeKey []byte, rnd io.Reader) (*Digest, error) {
	salt := make([]byte, saltSize)
	if _, err := io.ReadFull(rnd, salt); err != nil {
		return nil, fmt.Errorf("digest salt: %w", err)
	}
	return &Digest{
		Type: "pbkdf2", Hash: "sha256", Iterations: DigestIterations, Salt: salt,
		Digest: pbkdf2(sha256.New, volumeKey, salt, DigestIterations, 32),
	}, nil
}

// encodeHeaders renders the metadata into primary and backup header areas,
// each with its own random binary-header salt.
func encodeHeaders(bin BinHeader, m *Metadata, rnd io.Reader) (primary, backup []byte, err error) {
	text, err := json.Marshal(m)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadOptions, err)
	}
	// At least one NUL must terminate the JSON text inside its area.
	if len(text) >= int(bin.HeaderSize)-BinHeaderSize {
		return nil, nil, fmt.Errorf("%w: metadata is %d bytes, JSON area %d", ErrBadOptions, len(text), bin.HeaderSize-BinHeaderSize)
	}
	areas := [2][]byte{}
	for i, isBackup := range []bool{false, true} {
		h := bin
		h.Backup = isBackup
		h.HeaderOffset = 0
		if isBackup {
			h.HeaderOffset = bin.HeaderSize
		}
		if _, err := io.ReadFull(rnd, h.Salt[:]); err != nil {
			return nil, nil, fmt.Errorf("header salt: %w", err)
		}
		area := make([]byte, bin.HeaderSize)
		copy(area[BinHeaderSize:], text)
		if err := h.encodeArea(area); err != nil {
			return nil, nil, err
		}
		areas[i] = area
	}
	return areas[0], areas[1], nil
}

func randomUUID(rnd io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", fmt.Errorf("uuid: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
