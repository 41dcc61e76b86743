package harness

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/foxboron/go-uefi/efi/signature"
	"github.com/foxboron/go-uefi/efi/util"
	"github.com/foxboron/go-uefi/efivar"
)

// testKey is one Secure Boot key pair with its self-signed certificate.
type testKey struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// writeTestKeys generates a throwaway PK, KEK and db the way the keys
// helper does (go-uefi signed variable updates) and writes
// dir/enrol/{PK,KEK,db}.auth plus dir/db.{key,crt} (PEM, for sbsign).
// It stands in for initramfs.GenerateKeys so the harness is testable alone.
func writeTestKeys(t *testing.T, dir string) map[string]testKey {
	t.Helper()
	owner := util.StringToGUID("a3f3c6a0-1f5b-4c51-9a55-0e0d1b2c3d4e")
	keys := map[string]testKey{}
	for i, name := range []string{"PK", "KEK", "db"} {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 1)),
			Subject:      pkix.Name{CommonName: "inert harness test " + name},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = testKey{k, cert}
	}
	signer := map[string]string{"PK": "PK", "KEK": "PK", "db": "KEK"}
	vars := map[string]efivar.Efivar{"PK": efivar.PK, "KEK": efivar.KEK, "db": efivar.Db}
	if err := os.MkdirAll(filepath.Join(dir, "enrol"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"PK", "KEK", "db"} {
		sl := signature.NewSignatureDatabase()
		if err := sl.Append(signature.CERT_X509_GUID, *owner, keys[name].cert.Raw); err != nil {
			t.Fatal(err)
		}
		s := keys[signer[name]]
		_, auth, err := signature.SignEFIVariable(vars[name], sl, s.key, s.cert)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "enrol", name+".auth"), auth.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db := keys["db"]
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(db.key)})
	crtPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: db.cert.Raw})
	if err := os.WriteFile(filepath.Join(dir, "db.key"), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "db.crt"), crtPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return keys
}
