package initramfs

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/foxboron/go-uefi/authenticode"
	"github.com/foxboron/go-uefi/efi/signature"
)

func signTestUKI(t *testing.T) []byte {
	t.Helper()
	out, err := AssembleUKI(ukiTestStub(t), ukiTestSections())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sbverify (sbsigntool) is the independent verifier.
func signSBVerify(t *testing.T, img []byte, certPath string) error {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img.efi")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sbverify", "--cert", certPath, p).CombinedOutput()
	if err != nil {
		return errors.New(string(out))
	}
	return nil
}

func TestSignPEVerifies(t *testing.T) {
	dir := keysTestDir(t)
	s, err := LoadSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, dbCert := KeyPaths(dir, "db")
	_, pkCert := KeyPaths(dir, "PK")
	uki := signTestUKI(t)
	signed, err := SignPE(uki, s.Key, s.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyPE(signed, s.Cert); err != nil {
		t.Errorf("go-uefi: %v", err)
	}
	if err := signSBVerify(t, signed, dbCert); err != nil {
		t.Errorf("sbverify rejects the signed UKI: %v", err)
	}
	if err := signSBVerify(t, signed, pkCert); err == nil {
		t.Error("sbverify accepts the UKI with the PK certificate")
	}
	if _, err := pe.NewFile(bytes.NewReader(signed)); err != nil {
		t.Errorf("signed image no longer parses: %v", err)
	}
	if _, err := SignPE(signed, s.Key, s.Cert); !errors.Is(err, ErrAlreadySigned) {
		t.Errorf("re-sign: %v, want ErrAlreadySigned", err)
	}
	if err := VerifyPE(uki, s.Cert); !errors.Is(err, ErrNotSigned) {
		t.Errorf("unsigned: %v, want ErrNotSigned", err)
	}

	// One flipped byte inside .linux breaks both verifiers.
	f, _ := pe.NewFile(bytes.NewReader(signed))
	tampered := bytes.Clone(signed)
	tampered[f.Section(".linux").Offset+10] ^= 0xff
	if err := VerifyPE(tampered, s.Cert); !errors.Is(err, ErrBadSignature) {
		t.Errorf("go-uefi on tampered image: %v, want ErrBadSignature", err)
	}
	if err := signSBVerify(t, tampered, dbCert); err == nil {
		t.Error("sbverify accepts a tampered image")
	}
}

// TestAuthenticodeDigestMatchesSbsign compares the image hash with the one
// sbsign (an independent implementation) puts in its signature.
func TestAuthenticodeDigestMatchesSbsign(t *testing.T) {
	dir := keysTestDir(t)
	keyPath, certPath := KeyPaths(dir, "db")
	uki := signTestUKI(t)
	tmp := t.TempDir()
	in, out := filepath.Join(tmp, "in.efi"), filepath.Join(tmp, "out.efi")
	if err := os.WriteFile(in, uki, 0o644); err != nil {
		t.Fatal(err)
	}
	if o, err := exec.Command("sbsign", "--key", keyPath, "--cert", certPath, "--output", out, in).CombinedOutput(); err != nil {
		t.Fatalf("sbsign: %v\n%s", err, o)
	}
	sbSigned, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := signEmbeddedDigest(t, sbSigned)

	got, err := AuthenticodeDigest(uki)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("digest %x, sbsign signed %x", got, want)
	}
	if d, err := AuthenticodeDigest(sbSigned); err != nil || !bytes.Equal(d, want) {
		t.Errorf("digest of the sbsigned image %x (%v), want %x", d, err, want)
	}
	s, _ := LoadSigner(dir)
	ours, err := SignPE(uki, s.Key, s.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if d := signEmbeddedDigest(t, ours); !bytes.Equal(d, want) {
		t.Errorf("our signature covers %x, sbsign's %x", d, want)
	}
}

// signEmbeddedDigest pulls the SpcIndirectDataContent digest out of the
// first WIN_CERTIFICATE of a signed image.
func signEmbeddedDigest(t *testing.T, img []byte) []byte {
	t.Helper()
	f, err := pe.NewFile(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	dd := f.OptionalHeader.(*pe.OptionalHeader64).DataDirectory[pe.IMAGE_DIRECTORY_ENTRY_SECURITY]
	if dd.Size < 8 || int(dd.VirtualAddress)+int(dd.Size) > len(img) {
		t.Fatalf("no certificate table: %+v", dd)
	}
	w := img[dd.VirtualAddress:]
	n := binary.LittleEndian.Uint32(w)
	if binary.LittleEndian.Uint16(w[6:]) != uint16(signature.WIN_CERT_TYPE_PKCS_SIGNED_DATA) {
		t.Fatal("not a PKCS signed-data certificate")
	}
	a, err := authenticode.ParseAuthenticode(w[8:n])
	if err != nil {
		t.Fatal(err)
	}
	return a.Digest
}

func TestSignMalformed(t *testing.T) {
	uki := signTestUKI(t)
	p, _ := ukiParsePE(uki)
	dd := p.dataDirOffset(uki, ukiDataDirSecurity)
	cases := []struct {
		name string
		img  []byte
	}{
		{"empty", nil},
		{"truncated in a section", uki[:len(uki)-700]},
		{"cert table past the end", func() []byte {
			b := bytes.Clone(uki)
			binary.LittleEndian.PutUint32(b[dd:], uint32(len(b)))
			binary.LittleEndian.PutUint32(b[dd+4:], 64)
			return b
		}()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := AuthenticodeDigest(c.img); !errors.Is(err, ErrPEMalformed) {
				t.Errorf("digest: %v, want ErrPEMalformed", err)
			}
			if _, err := SignPE(c.img, nil, nil); !errors.Is(err, ErrPEMalformed) {
				t.Errorf("sign: %v, want ErrPEMalformed", err)
			}
		})
	}
}

func FuzzAuthenticodeDigest(f *testing.F) {
	stub := ukiTestStub(f)
	p, err := ukiParsePE(stub)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(bytes.Clone(stub[:p.sizeOfHdrs]))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := AuthenticodeDigest(b); err != nil && !errors.Is(err, ErrPEMalformed) && !errors.Is(err, ErrSignatureParser) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}
