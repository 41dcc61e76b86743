package measure

import (
	"crypto"
	_ "crypto/sha1" // the sha1 PCR bank
	_ "crypto/sha256"
	_ "crypto/sha512"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// Bank is one PCR bank: the TPM algorithm, the name systemd's log uses for it,
// and the hash that computes its digests.
type Bank struct {
	Alg  tpm2.TPMAlgID
	Name string
	Hash crypto.Hash
}

// KnownBanks are the banks inert can extend, in TPM algorithm order.
var KnownBanks = []Bank{
	{tpm2.TPMAlgSHA1, "sha1", crypto.SHA1},
	{tpm2.TPMAlgSHA256, "sha256", crypto.SHA256},
	{tpm2.TPMAlgSHA384, "sha384", crypto.SHA384},
	{tpm2.TPMAlgSHA512, "sha512", crypto.SHA512},
}

// BankByName finds a known bank by its log name ("sha256").
func BankByName(name string) (Bank, error) {
	for _, b := range KnownBanks {
		if b.Name == name {
			return b, nil
		}
	}
	return Bank{}, fmt.Errorf("%w: %q", ErrUnsupportedBank, name)
}

// BankByAlg finds a known bank by its TPM algorithm.
func BankByAlg(alg tpm2.TPMAlgID) (Bank, error) {
	for _, b := range KnownBanks {
		if b.Alg == alg {
			return b, nil
		}
	}
	return Bank{}, fmt.Errorf("%w: algorithm 0x%04x", ErrUnsupportedBank, uint16(alg))
}

// Digest hashes data with the bank's algorithm.
func (b Bank) Digest(data []byte) []byte {
	h := b.Hash.New()
	h.Write(data)
	return h.Sum(nil)
}

// ExtendValue is the TPM's extend operation: H(old || digest).
func (b Bank) ExtendValue(old, digest []byte) []byte {
	h := b.Hash.New()
	h.Write(old)
	h.Write(digest)
	return h.Sum(nil)
}

// Zero is the reset value of PCRs 0-16 and 23 in this bank.
func (b Bank) Zero() []byte { return make([]byte, b.Hash.Size()) }
