package luks2

import (
	"crypto/subtle"
	"fmt"
)

// Unlock recovers the volume key from the snapshot's in-memory keyslots with
// passphrase, trying keyslots in priority order. It returns the key and the
// keyslot id that opened it; the caller owns the key and must clear it. Call
// Check on the snapshot first: Unlock validates only what it must to run
// safely, not the policy.
func (s *Snapshot) Unlock(passphrase []byte) ([]byte, string, error) {
	for _, id := range s.KeyslotIDs() {
		key, err := s.UnlockKeyslot(id, passphrase)
		if err == nil {
			return key, id, nil
		}
		if err != ErrWrongKey {
			return nil, "", fmt.Errorf("keyslot %s: %w", id, err)
		}
	}
	return nil, "", ErrWrongKey
}

// UnlockKeyslot tries one keyslot; a wrong passphrase is exactly ErrWrongKey.
func (s *Snapshot) UnlockKeyslot(id string, passphrase []byte) ([]byte, error) {
	ks := s.Meta.Keyslots[id]
	material := s.material[id]
	if ks == nil || material == nil {
		return nil, fmt.Errorf("%w: no keyslot %q", ErrCorruptHeader, id)
	}
	dig := s.Meta.digestFor(id)
	if dig == nil || dig.Type != "pbkdf2" {
		return nil, fmt.Errorf("%w: keyslot %s digest", ErrUnsupported, id)
	}
	digestHash, err := afHash(dig.Hash)
	if err != nil {
		return nil, err
	}
	splitHash, err := afHash(ks.AF.Hash)
	if err != nil {
		return nil, err
	}
	if ks.AF.Type != "luks1" || ks.Area.Type != "raw" {
		return nil, fmt.Errorf("%w: keyslot %s af %q area %q", ErrUnsupported, id, ks.AF.Type, ks.Area.Type)
	}
	if dig.Iterations < 1 || len(dig.Digest) == 0 || len(dig.Digest) > 64 {
		return nil, fmt.Errorf("%w: keyslot %s digest parameters", ErrCorruptHeader, id)
	}
	if ks.Area.KeySize != 32 && ks.Area.KeySize != 64 {
		return nil, fmt.Errorf("%w: keyslot %s area key_size %d", ErrKeySize, id, ks.Area.KeySize)
	}
	areaKey, err := ks.KDF.derive(passphrase, ks.Area.KeySize)
	if err != nil {
		return nil, err
	}
	defer clear(areaKey)
	plain := append([]byte(nil), material...)
	defer clear(plain)
	if err := cryptArea(ks.Area.Encryption, areaKey, plain, false); err != nil {
		return nil, err
	}
	key, err := afMerge(plain, ks.KeySize, ks.AF.Stripes, splitHash)
	if err != nil {
		return nil, err
	}
	got := pbkdf2(digestHash, key, dig.Salt, dig.Iterations, len(dig.Digest))
	defer clear(got)
	if subtle.ConstantTimeCompare(got, dig.Digest) != 1 {
		clear(key)
		return nil, ErrWrongKey
	}
	return key, nil
}
