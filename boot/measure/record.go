package measure

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// recordSeparator starts every JSON-SEQ record (RFC 7464).
const recordSeparator = 0x1E

// Record is one entry of systemd's userspace measurement log: the CEL-JSON
// shape systemd-pcrextend writes, without "recnum".
type Record struct {
	PCR         int            `json:"pcr"`
	Digests     []RecordDigest `json:"digests"`
	ContentType string         `json:"content_type"`
	Content     Content        `json:"content"`
}

// RecordDigest is one bank's digest of the measured bytes.
type RecordDigest struct {
	HashAlg string `json:"hashAlg"`
	Digest  string `json:"digest"`
}

// Content is systemd's "systemd" content object. String is the measured
// word for phase events (and, for inert, for every event).
type Content struct {
	String    string `json:"string,omitempty"`
	BootID    string `json:"bootId,omitempty"`
	Timestamp uint64 `json:"timestamp,omitempty"`
	EventType string `json:"eventType,omitempty"`
}

// ContentTypeSystemd is the content_type systemd writes.
const ContentTypeSystemd = "systemd"

// maxRecordBytes bounds one record; a real one is well under 1 KiB.
const maxRecordBytes = 64 << 10

// Validate checks what replay depends on: a PCR index, known banks, each at
// most once, with digests of the right length.
func (r Record) Validate() error {
	if r.PCR < 0 || r.PCR > 23 {
		return fmt.Errorf("%w: pcr %d out of range", ErrLogFormat, r.PCR)
	}
	if len(r.Digests) == 0 {
		return fmt.Errorf("%w: pcr %d record without digests", ErrLogFormat, r.PCR)
	}
	seen := map[string]bool{}
	for _, d := range r.Digests {
		b, err := BankByName(d.HashAlg)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrLogFormat, err)
		}
		if seen[d.HashAlg] {
			return fmt.Errorf("%w: bank %s twice", ErrLogFormat, d.HashAlg)
		}
		seen[d.HashAlg] = true
		raw, err := hex.DecodeString(d.Digest)
		if err != nil || len(raw) != b.Hash.Size() {
			return fmt.Errorf("%w: %s digest is not %d hex bytes", ErrLogFormat, d.HashAlg, b.Hash.Size())
		}
	}
	return nil
}

// DigestFor returns the record's digest for a bank.
func (r Record) DigestFor(bank string) ([]byte, bool) {
	for _, d := range r.Digests {
		if d.HashAlg == bank {
			raw, err := hex.DecodeString(d.Digest)
			return raw, err == nil
		}
	}
	return nil, false
}

// SelfDescribing says whether every digest is its bank's hash of
// Content.String: true for every record inert writes.
func (r Record) SelfDescribing() bool {
	if r.Validate() != nil {
		return false
	}
	for _, d := range r.Digests {
		b, _ := BankByName(d.HashAlg)
		if hex.EncodeToString(b.Digest([]byte(r.Content.String))) != d.Digest {
			return false
		}
	}
	return true
}

// EncodeRecord renders one JSON-SEQ record: 0x1E, compact JSON, newline.
func EncodeRecord(r Record) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	// JSON would silently replace invalid UTF-8, and the log would no longer
	// say what was measured.
	if !utf8.ValidString(r.Content.String) || !utf8.ValidString(r.Content.EventType) {
		return nil, fmt.Errorf("%w: content is not valid UTF-8", ErrLogFormat)
	}
	js, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrLogFormat, err)
	}
	out := make([]byte, 0, len(js)+2)
	out = append(out, recordSeparator)
	out = append(out, js...)
	return append(out, '\n'), nil
}

// DecodeRecords parses a whole JSON-SEQ log. Every record must be valid:
// a log that replays is one that parses completely. Unknown content fields
// (other systemd event kinds) are ignored.
func DecodeRecords(data []byte) ([]Record, error) {
	if len(data) == 0 {
		return nil, nil
	}
	if data[0] != recordSeparator {
		return nil, fmt.Errorf("%w: log does not start with a record separator", ErrLogFormat)
	}
	var out []Record
	for i, chunk := range bytes.Split(data[1:], []byte{recordSeparator}) {
		if len(chunk) > maxRecordBytes {
			return nil, fmt.Errorf("%w: record %d is %d bytes", ErrLogFormat, i, len(chunk))
		}
		// RFC 7464: a record without its trailing newline was truncated.
		if len(chunk) == 0 || chunk[len(chunk)-1] != '\n' {
			return nil, fmt.Errorf("%w: record %d is truncated", ErrLogFormat, i)
		}
		var r Record
		dec := json.NewDecoder(bytes.NewReader(chunk))
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("%w: record %d: %v", ErrLogFormat, i, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("%w: record %d has trailing data", ErrLogFormat, i)
		}
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		out = append(out, r)
	}
	return out, nil
}
