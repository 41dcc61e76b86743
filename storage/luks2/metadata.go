package luks2

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Limits from the specification (and cryptsetup): ids 0..31 for keyslots and
// tokens.
const (
	MaxKeyslots = 32
	MaxTokens   = 32
	maxSegments = 32
	maxDigests  = 32
)

// Metadata is the JSON area. Objects are keyed by decimal ids as strings,
// exactly as on disk.
type Metadata struct {
	Keyslots map[string]*Keyslot        `json:"keyslots"`
	Tokens   map[string]json.RawMessage `json:"tokens"`
	Segments map[string]*Segment        `json:"segments"`
	Digests  map[string]*Digest         `json:"digests"`
	Config   Config                     `json:"config"`
}

// Keyslot is one "luks2" keyslot.
type Keyslot struct {
	Type     string `json:"type"`
	KeySize  int    `json:"key_size"`
	AF       AF     `json:"af"`
	Area     Area   `json:"area"`
	KDF      KDF    `json:"kdf"`
	Priority *int   `json:"priority,omitempty"`
}

// AF is the anti-forensic splitter of a keyslot.
type AF struct {
	Type    string `json:"type"`
	Stripes int    `json:"stripes"`
	Hash    string `json:"hash"`
}

// Area is where a keyslot's encrypted AF material lives.
type Area struct {
	Type       string `json:"type"`
	Offset     U64    `json:"offset"`
	Size       U64    `json:"size"`
	Encryption string `json:"encryption"`
	KeySize    int    `json:"key_size"`
}

// KDF derives a keyslot's area key from the passphrase. PBKDF2 uses Hash and
// Iterations; argon2i/argon2id use Time, Memory (KiB) and CPUs.
type KDF struct {
	Type       string `json:"type"`
	Hash       string `json:"hash,omitempty"`
	Iterations int    `json:"iterations,omitempty"`
	Time       int    `json:"time,omitempty"`
	Memory     int    `json:"memory,omitempty"`
	CPUs       int    `json:"cpus,omitempty"`
	Salt       []byte `json:"salt"`
}

// Segment is a data segment; inert writes exactly one "crypt" segment.
type Segment struct {
	Type       string `json:"type"`
	Offset     U64    `json:"offset"`
	Size       string `json:"size"` // "dynamic" or a decimal byte count
	IVTweak    U64    `json:"iv_tweak"`
	Encryption string `json:"encryption"`
	SectorSize int    `json:"sector_size"`
	// Integrity and Flags are parsed so that such headers are recognised (and
	// refused by the policy) rather than failing as unknown fields.
	Integrity json.RawMessage `json:"integrity,omitempty"`
	Flags     []string        `json:"flags,omitempty"`
}

// Digest verifies a volume key: PBKDF2 of the key with Salt must equal Digest.
type Digest struct {
	Type       string   `json:"type"`
	Keyslots   []string `json:"keyslots"`
	Segments   []string `json:"segments"`
	Hash       string   `json:"hash"`
	Iterations int      `json:"iterations"`
	Salt       []byte   `json:"salt"`
	Digest     []byte   `json:"digest"`
}

// Config is the "config" object.
type Config struct {
	JSONSize     U64             `json:"json_size"`
	KeyslotsSize U64             `json:"keyslots_size"`
	Flags        []string        `json:"flags,omitempty"`
	Requirements json.RawMessage `json:"requirements,omitempty"`
}

// Token is the part of a token every token has; Raw is the whole object.
type Token struct {
	Type     string          `json:"type"`
	Keyslots []string        `json:"keyslots"`
	Raw      json.RawMessage `json:"-"`
}

// U64 is a uint64 stored as a JSON string of decimal digits, as LUKS2 does
// for offsets and sizes (JSON numbers lose precision above 2^53).
type U64 uint64

// MarshalJSON writes the quoted decimal.
func (u U64) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatUint(uint64(u), 10) + `"`), nil
}

// UnmarshalJSON accepts only a quoted canonical decimal.
func (u *U64) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a decimal string: %w", err)
	}
	v, err := parseDecimal(s)
	if err != nil {
		return err
	}
	*u = U64(v)
	return nil
}

// parseDecimal accepts canonical decimal only: no sign, no leading zeros.
func parseDecimal(s string) (uint64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%q is not a canonical decimal", s)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a canonical decimal", s)
		}
	}
	return strconv.ParseUint(s, 10, 64)
}

// parseID parses an object id ("0".."limit-1").
func parseID(s string, limit int) (int, error) {
	v, err := parseDecimal(s)
	if err != nil || v >= uint64(limit) {
		return 0, fmt.Errorf("id %q out of range 0..%d", s, limit-1)
	}
	return int(v), nil
}

// ParseToken decodes the common fields of a token object.
func ParseToken(raw json.RawMessage) (Token, error) {
	var t Token
	if err := json.Unmarshal(raw, &t); err != nil {
		return Token{}, fmt.Errorf("%w: token: %v", ErrCorruptHeader, err)
	}
	if t.Type == "" || t.Keyslots == nil {
		return Token{}, fmt.Errorf("%w: token needs a type and a keyslots array", ErrCorruptHeader)
	}
	t.Raw = append(json.RawMessage(nil), raw...)
	return t, nil
}

// decodeJSONArea extracts and strictly decodes the metadata from a JSON area:
// text up to the first NUL, NUL padding after it, no duplicate keys, no
// unknown fields, every reference resolving.
func decodeJSONArea(area []byte) (*Metadata, []byte, error) {
	end := bytes.IndexByte(area, 0)
	if end < 0 {
		return nil, nil, fmt.Errorf("%w: JSON area is not NUL-terminated", ErrCorruptHeader)
	}
	for _, c := range area[end:] {
		if c != 0 {
			return nil, nil, fmt.Errorf("%w: bytes after the JSON text", ErrCorruptHeader)
		}
	}
	text := area[:end]
	if err := checkNoDuplicateKeys(text); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrCorruptHeader, err)
	}
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.DisallowUnknownFields()
	var m Metadata
	if err := dec.Decode(&m); err != nil {
		return nil, nil, fmt.Errorf("%w: JSON: %v", ErrCorruptHeader, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, fmt.Errorf("%w: data after the JSON object", ErrCorruptHeader)
	}
	if err := m.validate(); err != nil {
		return nil, nil, err
	}
	return &m, text, nil
}

// checkNoDuplicateKeys walks the JSON tokens and refuses an object that names
// a key twice: encoding/json keeps the last, other parsers may keep the first,
// and a header must mean one thing to every reader.
func checkNoDuplicateKeys(text []byte) error {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var walk func() error
	walk = func() error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		d, ok := tok.(json.Delim)
		if !ok {
			return nil
		}
		switch d {
		case '{':
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				key, _ := k.(string)
				if seen[key] {
					return fmt.Errorf("duplicate key %q", key)
				}
				seen[key] = true
				if err := walk(); err != nil {
					return err
				}
			}
		case '[':
			for dec.More() {
				if err := walk(); err != nil {
					return err
				}
			}
		}
		_, err = dec.Token() // the closing delimiter
		return err
	}
	return walk()
}

// validate checks the structure every reader needs (ids, references, the
// shapes of numbers), not the policy: that is Check.
func (m *Metadata) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrCorruptHeader}, a...)...)
	}
	if m.Keyslots == nil || m.Tokens == nil || m.Segments == nil || m.Digests == nil {
		return bad("keyslots, tokens, segments and digests objects are required")
	}
	if m.Config.JSONSize == 0 || m.Config.KeyslotsSize%4096 != 0 {
		return bad("config json_size %d / keyslots_size %d", m.Config.JSONSize, m.Config.KeyslotsSize)
	}
	for id, ks := range m.Keyslots {
		if _, err := parseID(id, MaxKeyslots); err != nil {
			return bad("keyslot %v", err)
		}
		if ks == nil || ks.Type == "" || ks.KDF.Type == "" || ks.Area.Type == "" || ks.AF.Type == "" {
			return bad("keyslot %s is incomplete", id)
		}
	}
	for id, raw := range m.Tokens {
		if _, err := parseID(id, MaxTokens); err != nil {
			return bad("token %v", err)
		}
		t, err := ParseToken(raw)
		if err != nil {
			return fmt.Errorf("token %s: %w", id, err)
		}
		for _, k := range t.Keyslots {
			if m.Keyslots[k] == nil {
				return bad("token %s names missing keyslot %q", id, k)
			}
		}
	}
	for id, s := range m.Segments {
		if _, err := parseID(id, maxSegments); err != nil {
			return bad("segment %v", err)
		}
		if s == nil || s.Type == "" {
			return bad("segment %s is incomplete", id)
		}
		if s.Size != "dynamic" {
			if _, err := parseDecimal(s.Size); err != nil {
				return bad("segment %s size: %v", id, err)
			}
		}
	}
	for id, d := range m.Digests {
		if _, err := parseID(id, maxDigests); err != nil {
			return bad("digest %v", err)
		}
		if d == nil || d.Type == "" {
			return bad("digest %s is incomplete", id)
		}
		for _, k := range d.Keyslots {
			if m.Keyslots[k] == nil {
				return bad("digest %s names missing keyslot %q", id, k)
			}
		}
		for _, s := range d.Segments {
			if m.Segments[s] == nil {
				return bad("digest %s names missing segment %q", id, s)
			}
		}
	}
	for id := range m.Keyslots {
		if m.digestFor(id) == nil {
			return bad("keyslot %s has no digest", id)
		}
	}
	return nil
}

// digestFor returns the digest that covers keyslot id.
func (m *Metadata) digestFor(id string) *Digest {
	for _, d := range m.Digests {
		for _, k := range d.Keyslots {
			if k == id {
				return d
			}
		}
	}
	return nil
}

// TokensOfType returns the tokens of one type, ordered by id.
func (m *Metadata) TokensOfType(typ string) []Token {
	var out []Token
	for i := range MaxTokens {
		raw, ok := m.Tokens[strconv.Itoa(i)]
		if !ok {
			continue
		}
		if t, err := ParseToken(raw); err == nil && t.Type == typ {
			out = append(out, t)
		}
	}
	return out
}

var errNoFreeID = errors.New("no free id")

// freeID returns the lowest unused id of an object map.
func freeID[V any](m map[string]V, limit int) (string, error) {
	for i := range limit {
		if _, used := m[strconv.Itoa(i)]; !used {
			return strconv.Itoa(i), nil
		}
	}
	return "", errNoFreeID
}
