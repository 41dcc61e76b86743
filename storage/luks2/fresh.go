package luks2

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
)

// FreshTokenType marks a volume whose filesystem has not been created yet.
// Format adds it; ClearFresh removes it once mke2fs has succeeded. A volume
// without it is never given a new filesystem.
const FreshTokenType = "inert-fresh"

func freshToken() json.RawMessage {
	return json.RawMessage(`{"type":"` + FreshTokenType + `","keyslots":[]}`)
}

// IsFresh reports whether the snapshot carries the fresh token.
func (s *Snapshot) IsFresh() bool {
	return len(s.Meta.TokensOfType(FreshTokenType)) > 0
}

// sameStructure reports whether two metadata objects differ at most in their
// tokens: the only thing Rewrite may change.
func sameStructure(a, b *Metadata) bool {
	strip := func(m *Metadata) []byte {
		c := *m
		c.Tokens = nil
		j, err := json.Marshal(&c)
		if err != nil {
			return nil
		}
		return j
	}
	ja, jb := strip(a), strip(b)
	return ja != nil && bytes.Equal(ja, jb)
}

// Rewrite replaces the volume's metadata by m, which may differ from the
// snapshot's only in its tokens, under seqid+1: the backup header first, the
// primary last, each behind a Sync. A cut anywhere leaves one intact copy,
// which ReadSnapshot reports with ErrInterruptedUpdate and Repair restores.
func Rewrite(dev Device, s *Snapshot, m *Metadata) error {
	if !sameStructure(s.Meta, m) {
		return fmt.Errorf("%w: a rewrite may change only tokens", ErrBadOptions)
	}
	if err := m.validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadOptions, err)
	}
	bin := s.Header
	bin.SeqID++
	primary, backup, err := encodeHeaders(bin, m, rand.Reader)
	if err != nil {
		return err
	}
	return writeHeaderPair(dev, primary, backup)
}

// Repair rewrites both copies from the snapshot's authoritative copy (after
// ReadSnapshot reported ErrInterruptedUpdate and the snapshot passed Check).
func Repair(dev Device, s *Snapshot) error {
	return Rewrite(dev, s, s.Meta)
}

// ClearFresh removes the fresh token(s) with Rewrite.
func ClearFresh(dev Device, s *Snapshot) error {
	m := *s.Meta
	m.Tokens = map[string]json.RawMessage{}
	for id, raw := range s.Meta.Tokens {
		if t, err := ParseToken(raw); err == nil && t.Type == FreshTokenType {
			continue
		}
		m.Tokens[id] = raw
	}
	return Rewrite(dev, s, &m)
}

// AddToken stores a token (a JSON object with "type" and "keyslots") under
// the lowest free id with Rewrite and returns that id.
func AddToken(dev Device, s *Snapshot, token json.RawMessage) (string, error) {
	if _, err := ParseToken(token); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadOptions, err)
	}
	m := *s.Meta
	m.Tokens = map[string]json.RawMessage{}
	for id, raw := range s.Meta.Tokens {
		m.Tokens[id] = raw
	}
	id, err := freeID(m.Tokens, MaxTokens)
	if err != nil {
		return "", fmt.Errorf("%w: token table full", ErrBadOptions)
	}
	m.Tokens[id] = append(json.RawMessage(nil), token...)
	return id, Rewrite(dev, s, &m)
}

// writeHeaderPair writes backup then primary, the primary's JSON area before
// its binary header, each step behind a Sync.
func writeHeaderPair(dev Device, primary, backup []byte) error {
	hdrSize := int64(len(primary))
	for _, w := range []struct {
		what string
		b    []byte
		off  int64
	}{
		{"backup header", backup, hdrSize},
		{"primary JSON area", primary[BinHeaderSize:], BinHeaderSize},
		{"primary binary header", primary[:BinHeaderSize], 0},
	} {
		if _, err := dev.WriteAt(w.b, w.off); err != nil {
			return fmt.Errorf("write %s: %w", w.what, err)
		}
		if err := dev.Sync(); err != nil {
			return fmt.Errorf("sync after %s: %w", w.what, err)
		}
	}
	return nil
}
