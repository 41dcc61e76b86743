package initramfs

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/foxboron/go-uefi/efi/signature"
	"github.com/google/uuid"
)

func keysTestDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "secureboot")
	if err := GenerateKeys(dir, false); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestGenerateKeysFiles(t *testing.T) {
	dir := keysTestDir(t)
	guidText, err := os.ReadFile(filepath.Join(dir, "GUID"))
	if err != nil {
		t.Fatal(err)
	}
	owner, err := uuid.Parse(strings.TrimSpace(string(guidText)))
	if err != nil {
		t.Fatalf("GUID file: %v", err)
	}
	for _, n := range KeyNames {
		s, err := LoadKey(dir, n)
		if err != nil {
			t.Fatal(err)
		}
		if s.Cert.Subject.CommonName != "inert "+n {
			t.Errorf("%s: CN %q", n, s.Cert.Subject.CommonName)
		}
		if err := s.Cert.CheckSignature(s.Cert.SignatureAlgorithm, s.Cert.RawTBSCertificate, s.Cert.Signature); err != nil {
			t.Errorf("%s: not self-signed: %v", n, err)
		}
		keyPath, _ := KeyPaths(dir, n)
		if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: key mode %v (%v), want 0600", n, fi.Mode(), err)
		}
		cer, err := os.ReadFile(filepath.Join(dir, "enrol", n+".cer"))
		if err != nil || !bytes.Equal(cer, s.Cert.Raw) {
			t.Errorf("%s.cer is not the certificate's DER (%v)", n, err)
		}
		eslBytes, err := os.ReadFile(filepath.Join(dir, "enrol", n+".esl"))
		if err != nil {
			t.Fatal(err)
		}
		keysCheckESL(t, n, eslBytes, owner, s.Cert)
	}
}

// keysCheckESL parses an EFI_SIGNATURE_LIST by the UEFI spec layout, not
// with the library that wrote it.
func keysCheckESL(t *testing.T, name string, b []byte, owner uuid.UUID, cert *x509.Certificate) {
	t.Helper()
	if len(b) < 28 {
		t.Fatalf("%s.esl: %d bytes", name, len(b))
	}
	x509GUID := keysMixedEndianGUID(uuid.MustParse("a5c059a1-94e4-4aa7-87b5-ab155c2bf072"))
	listSize := binary.LittleEndian.Uint32(b[16:])
	hdrSize := binary.LittleEndian.Uint32(b[20:])
	sigSize := binary.LittleEndian.Uint32(b[24:])
	if !bytes.Equal(b[:16], x509GUID) || int(listSize) != len(b) || hdrSize != 0 || int(sigSize) != 16+len(cert.Raw) {
		t.Fatalf("%s.esl header: type %x size %d hdr %d sig %d", name, b[:16], listSize, hdrSize, sigSize)
	}
	if !bytes.Equal(b[28:44], keysMixedEndianGUID(owner)) || !bytes.Equal(b[44:], cert.Raw) {
		t.Errorf("%s.esl: owner or certificate differs", name)
	}
}

func keysMixedEndianGUID(u uuid.UUID) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint32(b, binary.BigEndian.Uint32(u[0:]))
	binary.LittleEndian.PutUint16(b[4:], binary.BigEndian.Uint16(u[4:]))
	binary.LittleEndian.PutUint16(b[6:], binary.BigEndian.Uint16(u[6:]))
	copy(b[8:], u[8:])
	return b
}

// TestAuthFilesVerifyWithOpenSSL checks each .auth by the UEFI layout
// (EFI_TIME, WIN_CERTIFICATE_UEFI_GUID, PKCS#7, then the ESL) and verifies
// its detached signature over name||vendor GUID||attributes||time||ESL with
// openssl cms, which shares no code with go-uefi.
func TestAuthFilesVerifyWithOpenSSL(t *testing.T) {
	dir := keysTestDir(t)
	globalGUID := uuid.MustParse("8be4df61-93ca-11d2-aa0d-00e098032b8c")
	dbGUID := uuid.MustParse("d719b2cb-3d3a-4596-a3bc-dad00e67656f")
	const attrs = 0x1 | 0x2 | 0x4 | 0x20 // NV|BS|RT|time-based authenticated write
	cases := []struct {
		name, signer, wrongSigner string
		vendor                    uuid.UUID
	}{
		{"PK", "PK", "KEK", globalGUID},
		{"KEK", "PK", "db", globalGUID},
		{"db", "KEK", "PK", dbGUID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			auth, err := os.ReadFile(filepath.Join(dir, "enrol", c.name+".auth"))
			if err != nil {
				t.Fatal(err)
			}
			esl, _ := os.ReadFile(filepath.Join(dir, "enrol", c.name+".esl"))
			if len(auth) < 40 {
				t.Fatalf("auth too short: %d", len(auth))
			}
			efiTime := auth[:16]
			if year := binary.LittleEndian.Uint16(efiTime); year < 2024 {
				t.Errorf("timestamp year %d", year)
			}
			winLen := binary.LittleEndian.Uint32(auth[16:])
			if binary.LittleEndian.Uint16(auth[20:]) != 0x0200 || binary.LittleEndian.Uint16(auth[22:]) != 0x0EF1 {
				t.Fatalf("WIN_CERTIFICATE revision/type wrong")
			}
			pkcs7GUID := keysMixedEndianGUID(uuid.MustParse("4aafd29d-68df-49ee-8aa9-347d375665a7"))
			if !bytes.Equal(auth[24:40], pkcs7GUID) || int(16+winLen) > len(auth) {
				t.Fatalf("not EFI_CERT_TYPE_PKCS7_GUID or bad length %d", winLen)
			}
			certData := auth[40 : 16+winLen]
			if !bytes.Equal(auth[16+winLen:], esl) {
				t.Fatal("payload after the authentication header is not the ESL")
			}
			var signed []byte
			for _, r := range utf16.Encode([]rune(c.name)) {
				signed = binary.LittleEndian.AppendUint16(signed, r)
			}
			signed = append(signed, keysMixedEndianGUID(c.vendor)...)
			signed = binary.LittleEndian.AppendUint32(signed, attrs)
			signed = append(signed, efiTime...)
			signed = append(signed, esl...)

			if err := keysOpenSSLVerify(t, certData, signed, dir, c.signer); err != nil {
				t.Errorf("openssl rejects the %s update signed by %s: %v", c.name, c.signer, err)
			}
			if err := keysOpenSSLVerify(t, certData, signed, dir, c.wrongSigner); err == nil {
				t.Errorf("openssl accepts the %s update with %s's certificate", c.name, c.wrongSigner)
			}
			tampered := bytes.Clone(signed)
			tampered[len(tampered)-1] ^= 1
			if err := keysOpenSSLVerify(t, certData, tampered, dir, c.signer); err == nil {
				t.Errorf("openssl accepts a tampered %s payload", c.name)
			}
			// go-uefi's own check agrees on the good case.
			a, err := signature.ReadEFIVariableAuthencation2(bytes.NewReader(auth))
			if err != nil {
				t.Fatal(err)
			}
			s, _ := LoadKey(dir, c.signer)
			if ok, err := a.Verify(s.Cert); !ok || err != nil {
				t.Errorf("go-uefi: %v %v", ok, err)
			}
		})
	}
}

func keysOpenSSLVerify(t *testing.T, signedData, content []byte, dir, signer string) error {
	t.Helper()
	// ContentInfo { id-signedData, [0] EXPLICIT SignedData }
	oid, err := asn1.Marshal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2})
	if err != nil {
		t.Fatal(err)
	}
	explicit, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: signedData})
	if err != nil {
		t.Fatal(err)
	}
	ci, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: append(oid, explicit...)})
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	sigPath, dataPath := filepath.Join(tmp, "sig.der"), filepath.Join(tmp, "data")
	os.WriteFile(sigPath, ci, 0o600)
	os.WriteFile(dataPath, content, 0o600)
	_, certPath := KeyPaths(dir, signer)
	out, err := exec.Command("openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", sigPath,
		"-content", dataPath, "-CAfile", certPath, "-purpose", "any", "-out", os.DevNull).CombinedOutput()
	if err != nil {
		return errors.New(strings.TrimSpace(string(out)))
	}
	return nil
}

func TestGenerateKeysRefusesOverwrite(t *testing.T) {
	dir := keysTestDir(t)
	before, _ := LoadSigner(dir)
	guid, _ := os.ReadFile(filepath.Join(dir, "GUID"))
	if err := GenerateKeys(dir, false); !errors.Is(err, ErrKeysExist) {
		t.Fatalf("second run without force: %v, want ErrKeysExist", err)
	}
	if again, _ := LoadSigner(dir); !again.Cert.Equal(before.Cert) {
		t.Fatal("refused run still changed the db certificate")
	}
	if err := GenerateKeys(dir, true); err != nil {
		t.Fatal(err)
	}
	after, err := LoadSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	if after.Cert.Equal(before.Cert) {
		t.Error("--force kept the old db certificate")
	}
	if g, _ := os.ReadFile(filepath.Join(dir, "GUID")); !bytes.Equal(g, guid) {
		t.Error("--force changed the owner GUID")
	}
}

func TestLoadKeyFaults(t *testing.T) {
	dir := keysTestDir(t)
	pkKey, _ := KeyPaths(dir, "PK")
	dbKey, dbCert := KeyPaths(dir, "db")
	cases := []struct {
		name  string
		fault func(d string)
		want  error
	}{
		{"key of another cert", func(d string) { keysCopy(t, pkKey, filepath.Join(d, "db.key")) }, ErrKeyFile},
		{"garbage key", func(d string) { os.WriteFile(filepath.Join(d, "db.key"), []byte("nope"), 0o600) }, ErrKeyFile},
		{"cert is a key", func(d string) { keysCopy(t, dbKey, filepath.Join(d, "db.crt")) }, ErrKeyFile},
		{"missing cert", func(d string) { os.Remove(filepath.Join(d, "db.crt")) }, os.ErrNotExist},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := t.TempDir()
			keysCopy(t, dbKey, filepath.Join(d, "db.key"))
			keysCopy(t, dbCert, filepath.Join(d, "db.crt"))
			c.fault(d)
			if _, err := LoadSigner(d); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func keysCopy(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func FuzzParsePrivateKeyPEM(f *testing.F) {
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := ParsePrivateKeyPEM(b); err != nil && !errors.Is(err, ErrKeyFile) {
			t.Fatalf("unwrapped error %v", err)
		}
		if _, err := ParseCertificatePEM(b); err != nil && !errors.Is(err, ErrKeyFile) {
			t.Fatalf("unwrapped error %v", err)
		}
	})
}
