package initramfs

// Secure Boot keys: the PK, KEK and db key pairs an appliance owner enrols,
// and the public artefacts (DER certificates, EFI signature lists,
// authenticated variable updates) the provisioner writes into firmware.

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/foxboron/go-uefi/efi/signature"
	"github.com/foxboron/go-uefi/efi/util"
	"github.com/foxboron/go-uefi/efivar"
	"github.com/google/uuid"
	"inert/boot"
)

// Errors from key handling.
var (
	ErrKeysExist = errors.New("keys: Secure Boot keys already exist (use --force to replace them)")
	ErrKeyFile   = errors.New("keys: unusable key or certificate file")
)

// KeyNames are the three Secure Boot keys, in enrolment-chain order: PK signs
// the PK and KEK updates, KEK signs the db update, db signs the UKI.
var KeyNames = []string{"PK", "KEK", "db"}

const (
	keysRSABits  = 2048 // what every firmware accepts
	keysValidity = 30 * 365 * 24 * time.Hour
	keysGUIDFile = "GUID"
	keysEnrolDir = "enrol"
)

// KeyPaths names the files of one key in dir.
func KeyPaths(dir, name string) (key, cert string) {
	return filepath.Join(dir, name+".key"), filepath.Join(dir, name+".crt")
}

// GenerateKeys creates RSA-2048 self-signed PK, KEK and db certificates in
// dir: private keys as PEM (0600) and certificates as PEM, an owner GUID in
// dir/GUID (kept when it exists, so re-keying keeps the owner), and the
// enrolment artefacts in dir/enrol: <name>.cer (DER), <name>.esl (EFI
// signature list) and <name>.auth (time-based authenticated update; PK and
// KEK signed by PK, db signed by KEK). Existing keys are refused unless force.
func GenerateKeys(dir string, force bool) error {
	if !force {
		for _, n := range KeyNames {
			k, c := KeyPaths(dir, n)
			for _, p := range []string{k, c} {
				if _, err := os.Lstat(p); err == nil {
					return fmt.Errorf("%w: %s", ErrKeysExist, p)
				}
			}
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, keysEnrolDir), 0o700); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	owner, err := keysOwnerGUID(dir)
	if err != nil {
		return err
	}

	type pair struct {
		key  *rsa.PrivateKey
		cert *x509.Certificate
	}
	pairs := map[string]pair{}
	now := time.Now().UTC().Truncate(time.Second)
	for _, n := range KeyNames {
		key, cert, err := keysSelfSigned("inert "+n, n == "db", now)
		if err != nil {
			return err
		}
		pairs[n] = pair{key, cert}
	}
	signedBy := map[string]string{"PK": "PK", "KEK": "PK", "db": "KEK"}
	vars := map[string]efivar.Efivar{"PK": efivar.PK, "KEK": efivar.KEK, "db": efivar.Db}
	for _, n := range KeyNames {
		p := pairs[n]
		der, err := x509.MarshalPKCS8PrivateKey(p.key)
		if err != nil {
			return fmt.Errorf("keys: %s: %w", n, err)
		}
		keyPath, certPath := KeyPaths(dir, n)
		if err := keysWriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return err
		}
		if err := keysWriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.cert.Raw}), 0o644); err != nil {
			return err
		}

		esl := signature.NewSignatureDatabase()
		if err := esl.Append(signature.CERT_X509_GUID, owner, p.cert.Raw); err != nil {
			return fmt.Errorf("keys: %s signature list: %w", n, err)
		}
		signer := pairs[signedBy[n]]
		_, auth, err := signature.SignEFIVariable(vars[n], esl, signer.key, signer.cert)
		if err != nil {
			return fmt.Errorf("keys: signing %s update: %w", n, err)
		}
		var authBytes bytes.Buffer
		auth.Marshal(&authBytes)

		enrol := filepath.Join(dir, keysEnrolDir, n)
		for ext, b := range map[string][]byte{".cer": p.cert.Raw, ".esl": esl.Bytes(), ".auth": authBytes.Bytes()} {
			if err := keysWriteFile(enrol+ext, b, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// keysOwnerGUID reads dir/GUID or creates it with a fresh random GUID.
func keysOwnerGUID(dir string) (util.EFIGUID, error) {
	p := filepath.Join(dir, keysGUIDFile)
	b, err := os.ReadFile(p)
	switch {
	case err == nil:
		u, perr := uuid.Parse(strings.TrimSpace(string(b)))
		if perr != nil {
			return util.EFIGUID{}, fmt.Errorf("%w: %s: %v", ErrKeyFile, p, perr)
		}
		return *util.StringToGUID(u.String()), nil
	case errors.Is(err, fs.ErrNotExist):
		u, gerr := uuid.NewRandom()
		if gerr != nil {
			return util.EFIGUID{}, fmt.Errorf("keys: owner GUID: %w", gerr)
		}
		if err := keysWriteFile(p, []byte(u.String()+"\n"), 0o644); err != nil {
			return util.EFIGUID{}, err
		}
		return *util.StringToGUID(u.String()), nil
	default:
		return util.EFIGUID{}, fmt.Errorf("keys: %w", err)
	}
}

// keysSelfSigned makes one RSA key and its self-signed certificate. The db
// certificate is a code-signing leaf; PK and KEK may sign other keys.
func keysSelfSigned(cn string, codeSigning bool, now time.Time) (*rsa.PrivateKey, *x509.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, keysRSABits)
	if err != nil {
		return nil, nil, fmt.Errorf("keys: %s: %w", cn, err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("keys: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(keysValidity),
		BasicConstraintsValid: true,
		IsCA:                  !codeSigning,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	if codeSigning {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("keys: %s certificate: %w", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("keys: %s certificate: %w", cn, err)
	}
	return key, cert, nil
}

// Signer is a key and the certificate that vouches for it.
type Signer struct {
	Key  crypto.Signer
	Cert *x509.Certificate
}

// LoadSigner reads the db key and certificate from dir, the pair that signs
// UKIs.
func LoadSigner(dir string) (Signer, error) {
	return LoadKey(dir, "db")
}

// LoadKey reads key name (PK, KEK, db) from dir and checks that the private
// key matches the certificate.
func LoadKey(dir, name string) (Signer, error) {
	keyPath, certPath := KeyPaths(dir, name)
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return Signer{}, fmt.Errorf("keys: %w", err)
	}
	cb, err := os.ReadFile(certPath)
	if err != nil {
		return Signer{}, fmt.Errorf("keys: %w", err)
	}
	key, err := ParsePrivateKeyPEM(kb)
	if err != nil {
		return Signer{}, fmt.Errorf("%s: %w", keyPath, err)
	}
	cert, err := ParseCertificatePEM(cb)
	if err != nil {
		return Signer{}, fmt.Errorf("%s: %w", certPath, err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return Signer{}, fmt.Errorf("%w: %s does not match %s", ErrKeyFile, keyPath, certPath)
	}
	return Signer{Key: key, Cert: cert}, nil
}

// ParsePrivateKeyPEM accepts a PKCS#8 or PKCS#1 RSA key.
func ParsePrivateKeyPEM(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrKeyFile)
	}
	switch blk.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrKeyFile, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%w: key cannot sign", ErrKeyFile)
		}
		return s, nil
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrKeyFile, err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("%w: PEM block %q is not a private key", ErrKeyFile, blk.Type)
}

// ParseCertificatePEM reads the first certificate of a PEM file.
func ParseCertificatePEM(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: no PEM certificate", ErrKeyFile)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyFile, err)
	}
	return c, nil
}

// keysWriteFile writes atomically (temporary file, fsync, rename) so a crash
// never leaves half a key.
func keysWriteFile(path string, b []byte, perm os.FileMode) error {
	if err := boot.WriteFileAtomic(path, b, perm); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	return nil
}
