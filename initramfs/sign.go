package initramfs

// Authenticode: signing a PE image (the UKI) for Secure Boot, verifying it,
// and its SHA-256 image hash, which firmware measures into PCR 4.

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/foxboron/go-uefi/authenticode"
)

// Errors from signing and verification.
var (
	ErrPEMalformed     = errors.New("sign: not a well-formed PE32+ image")
	ErrAlreadySigned   = errors.New("sign: image already carries a signature")
	ErrNotSigned       = errors.New("sign: image carries no signature")
	ErrBadSignature    = errors.New("sign: signature does not verify")
	ErrSignatureParser = errors.New("sign: signature library failed on the image")
)

// SignPE returns pe with an Authenticode (PKCS#7, SHA-256) signature by
// key/cert appended as its certificate table. Refuses an already signed
// image: a second signature is never what the build means.
func SignPE(pe []byte, key crypto.Signer, cert *x509.Certificate) ([]byte, error) {
	certTable, err := signCertTable(pe)
	if err != nil {
		return nil, err
	}
	if certTable != [2]uint32{} {
		return nil, ErrAlreadySigned
	}
	var out []byte
	err = signGuard(func() error {
		bin, err := authenticode.Parse(bytes.NewReader(pe))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrPEMalformed, err)
		}
		if _, err := bin.Sign(key, cert); err != nil {
			return fmt.Errorf("sign: %w", err)
		}
		out = bin.Bytes()
		return nil
	})
	return out, err
}

// VerifyPE checks that pe carries a valid Authenticode signature by cert over
// its current contents.
func VerifyPE(pe []byte, cert *x509.Certificate) error {
	certTable, err := signCertTable(pe)
	if err != nil {
		return err
	}
	if certTable == [2]uint32{} {
		return ErrNotSigned
	}
	return signGuard(func() error {
		bin, err := authenticode.Parse(bytes.NewReader(pe))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrPEMalformed, err)
		}
		ok, err := bin.Verify(cert)
		if err != nil || !ok {
			return fmt.Errorf("%w: %v", ErrBadSignature, err)
		}
		return nil
	})
}

// AuthenticodeDigest is the SHA-256 Authenticode image hash of pe: the
// headers without the checksum and certificate-table entry, the sections in
// file order, and trailing data up to the certificate table. It is the same
// for the signed and the unsigned image, and is what firmware extends into
// PCR 4 for the image it starts.
func AuthenticodeDigest(pe []byte) ([]byte, error) {
	if _, err := signCertTable(pe); err != nil {
		return nil, err
	}
	var sum []byte
	err := signGuard(func() error {
		bin, err := authenticode.Parse(bytes.NewReader(pe))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrPEMalformed, err)
		}
		sum = bin.Hash(crypto.SHA256)
		if sum == nil {
			return fmt.Errorf("%w: hash failed", ErrPEMalformed)
		}
		return nil
	})
	return sum, err
}

// signCertTable checks the header fields the Authenticode library trusts
// (header size, section data, certificate table) against the file size, so
// that bad input is an error here rather than a panic there, and returns
// the certificate table entry (file offset, size).
func signCertTable(b []byte) ([2]uint32, error) {
	var none [2]uint32
	p, err := ukiParsePE(b)
	if err != nil {
		return none, fmt.Errorf("%w: %v", ErrPEMalformed, err)
	}
	for i := 0; i < p.nSections; i++ {
		h := p.section(b, i)
		size, ptr := uint64(binary.LittleEndian.Uint32(h[16:])), uint64(binary.LittleEndian.Uint32(h[20:]))
		if size > 0 && ptr+size > uint64(len(b)) {
			return none, fmt.Errorf("%w: section data beyond the file", ErrPEMalformed)
		}
	}
	dd := p.dataDirOffset(b, ukiDataDirSecurity)
	if dd < 0 {
		return none, fmt.Errorf("%w: no certificate table entry", ErrPEMalformed)
	}
	off, size := binary.LittleEndian.Uint32(b[dd:]), binary.LittleEndian.Uint32(b[dd+4:])
	if size != 0 && (uint64(off)+uint64(size) != uint64(len(b)) || off < p.sizeOfHdrs) {
		return none, fmt.Errorf("%w: certificate table is not at the end of the file", ErrPEMalformed)
	}
	return [2]uint32{off, size}, nil
}

// signGuard runs f and turns a panic inside the third-party Authenticode
// code into an error: bad outside input must never crash the CLI.
func signGuard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrSignatureParser, r)
		}
	}()
	return f()
}
