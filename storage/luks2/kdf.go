package luks2

import (
	"crypto/hmac"
	"encoding/binary"
	"fmt"
	"hash"

	"golang.org/x/crypto/argon2"
)

// KDF types inert writes. argon2i is read (cryptsetup can write it) but never
// written.
const (
	KDFPBKDF2   = "pbkdf2"
	KDFArgon2id = "argon2id"
	KDFArgon2i  = "argon2i"
)

// PBKDF2Params is the KDF for high-entropy secrets (a random 256-bit key
// sealed by a TPM or derived by a TEE): stretching adds nothing to 256 bits of
// entropy, so the iteration count is the specification's floor.
func PBKDF2Params() KDF {
	return KDF{Type: KDFPBKDF2, Hash: "sha256", Iterations: 1000}
}

// Argon2idParams is the KDF for anything a person might type: memory-hard,
// with the given cost (memory in KiB).
func Argon2idParams(time, memoryKiB, cpus int) KDF {
	return KDF{Type: KDFArgon2id, Time: time, Memory: memoryKiB, CPUs: cpus}
}

// derive runs the keyslot KDF; the caller clears the result.
func (k *KDF) derive(passphrase []byte, keyLen int) ([]byte, error) {
	if len(k.Salt) == 0 || keyLen <= 0 {
		return nil, fmt.Errorf("%w: KDF needs a salt and a key length", ErrCorruptHeader)
	}
	switch k.Type {
	case KDFPBKDF2:
		h, err := afHash(k.Hash)
		if err != nil {
			return nil, err
		}
		if k.Iterations < 1 {
			return nil, fmt.Errorf("%w: pbkdf2 iterations %d", ErrKDF, k.Iterations)
		}
		return pbkdf2(h, passphrase, k.Salt, k.Iterations, keyLen), nil
	case KDFArgon2id, KDFArgon2i:
		if k.Time < 1 || k.Memory < 8 || k.CPUs < 1 || k.CPUs > 255 {
			return nil, fmt.Errorf("%w: argon2 time %d memory %d cpus %d", ErrKDF, k.Time, k.Memory, k.CPUs)
		}
		if k.Type == KDFArgon2i {
			return argon2.Key(passphrase, k.Salt, uint32(k.Time), uint32(k.Memory), uint8(k.CPUs), uint32(keyLen)), nil
		}
		return argon2.IDKey(passphrase, k.Salt, uint32(k.Time), uint32(k.Memory), uint8(k.CPUs), uint32(keyLen)), nil
	}
	return nil, fmt.Errorf("%w: KDF %q", ErrUnsupported, k.Type)
}

// pbkdf2 is RFC 8018 PBKDF2 with HMAC. It is written here rather than taken
// from crypto/pbkdf2 because that API takes the password as a string, which
// copies key material into memory that can never be cleared.
func pbkdf2(newHash func() hash.Hash, password, salt []byte, iterations, keyLen int) []byte {
	mac := hmac.New(newHash, password)
	size := mac.Size()
	out := make([]byte, 0, (keyLen+size-1)/size*size)
	u := make([]byte, size)
	t := make([]byte, size)
	var ctr [4]byte
	for block := uint32(1); len(out) < keyLen; block++ {
		binary.BigEndian.PutUint32(ctr[:], block)
		mac.Reset()
		mac.Write(salt)
		mac.Write(ctr[:])
		u = mac.Sum(u[:0])
		copy(t, u)
		for range iterations - 1 {
			mac.Reset()
			mac.Write(u)
			u = mac.Sum(u[:0])
			xorInto(t, u)
		}
		out = append(out, t...)
	}
	clear(u)
	clear(t)
	clear(out[keyLen:])
	return out[:keyLen]
}
