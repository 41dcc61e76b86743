package storage

import (
	"context"
	"encoding/json"
	"errors"

	"inert/storage/luks2"
)

// ErrKeySource: the key source could not produce the zone's passphrase
// (e.g. a TPM whose PCRs no longer match refuses to unseal).
var ErrKeySource = errors.New("zone key source refused")

// Enrollment is what a key source contributes to a new volume: the keyslot
// passphrase, its KDF, and tokens that let the source find it again (a
// sealed blob, derivation inputs). Tokens name keyslot "0".
type Enrollment struct {
	Passphrase []byte
	KDF        luks2.KDF
	Tokens     []json.RawMessage
}

// KeySource is a zone key source named in the manifest ("tpm", "snp",
// "service"). TPM sealing and SNP derivation live with the measurement code;
// the lead wires them in through this interface.
type KeySource interface {
	Name() string
	// Enroll makes the secret for a volume about to be formatted.
	Enroll(ctx context.Context) (Enrollment, error)
	// Passphrase recovers the secret from the volume's (checked) tokens.
	// Errors wrap ErrKeySource.
	Passphrase(ctx context.Context, meta *luks2.Metadata) ([]byte, error)
}

// StaticKey is a key source holding one high-entropy secret, such as the
// hyperbeam zone key (ZoneKey) handed in by `inert zone open --key-file -`.
// The secret is 256 bits, so its keyslot uses minimal PBKDF2.
type StaticKey struct {
	Source string
	Key    []byte
}

// Name implements KeySource.
func (s StaticKey) Name() string { return s.Source }

// Enroll implements KeySource.
func (s StaticKey) Enroll(context.Context) (Enrollment, error) {
	if len(s.Key) < 32 {
		return Enrollment{}, errors.Join(ErrKeySource, errors.New("static key shorter than 256 bits"))
	}
	return Enrollment{Passphrase: append([]byte(nil), s.Key...), KDF: luks2.PBKDF2Params()}, nil
}

// Passphrase implements KeySource.
func (s StaticKey) Passphrase(context.Context, *luks2.Metadata) ([]byte, error) {
	if len(s.Key) == 0 {
		return nil, errors.Join(ErrKeySource, errors.New("no static key"))
	}
	return append([]byte(nil), s.Key...), nil
}
