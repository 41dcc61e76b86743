package luks2

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
)

// Stripes is the anti-forensic stripe count of every LUKS keyslot.
const Stripes = 4000

// afHash returns the constructor for an AF or digest hash name.
func afHash(name string) (func() hash.Hash, error) {
	switch name {
	case "sha256":
		return sha256.New, nil
	case "sha512":
		return sha512.New, nil
	}
	return nil, fmt.Errorf("%w: hash %q", ErrUnsupported, name)
}

// diffuse replaces buf by the concatenation of H(be32(i) || block_i) over
// its hash-sized blocks (the last one possibly short and truncated).
func diffuse(buf []byte, h hash.Hash) {
	var iv [4]byte
	var sum []byte
	size := h.Size()
	for i, off := 0, 0; off < len(buf); i, off = i+1, off+size {
		end := min(off+size, len(buf))
		binary.BigEndian.PutUint32(iv[:], uint32(i))
		h.Reset()
		h.Write(iv[:])
		h.Write(buf[off:end])
		sum = h.Sum(sum[:0])
		copy(buf[off:end], sum)
	}
	clear(sum)
}

// afSplit spreads key over stripes blocks: all but the last are random, the
// last is key XOR the diffused XOR-chain of the others, so every stripe is
// needed to recover the key.
func afSplit(key []byte, stripes int, newHash func() hash.Hash, rnd io.Reader) ([]byte, error) {
	n := len(key)
	out := make([]byte, n*stripes)
	if _, err := io.ReadFull(rnd, out[:n*(stripes-1)]); err != nil {
		return nil, fmt.Errorf("AF split random stripes: %w", err)
	}
	chain := make([]byte, n)
	defer clear(chain)
	h := newHash()
	for i := range stripes - 1 {
		xorInto(chain, out[i*n:(i+1)*n])
		diffuse(chain, h)
	}
	last := out[(stripes-1)*n:]
	copy(last, key)
	xorInto(last, chain)
	return out, nil
}

// afMerge inverts afSplit; the caller owns (and clears) the returned key.
func afMerge(material []byte, keySize, stripes int, newHash func() hash.Hash) ([]byte, error) {
	if keySize <= 0 || stripes <= 0 || len(material) < keySize*stripes {
		return nil, fmt.Errorf("%w: AF material %d bytes for %d x %d", ErrCorruptHeader, len(material), keySize, stripes)
	}
	key := make([]byte, keySize)
	h := newHash()
	for i := range stripes - 1 {
		xorInto(key, material[i*keySize:(i+1)*keySize])
		diffuse(key, h)
	}
	xorInto(key, material[(stripes-1)*keySize:stripes*keySize])
	return key, nil
}

func xorInto(dst, src []byte) {
	for i := range dst {
		dst[i] ^= src[i]
	}
}
