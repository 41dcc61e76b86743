package expect

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"hash"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/foxboron/go-uefi/authenticode"
)

const stub = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

type ukiParts struct{ linux, osrel, cmdline, initrd []byte }

// buildUKI assembles a UKI from the Debian stub with objcopy, an
// independent PE writer.
func buildUKI(t *testing.T, p ukiParts) string {
	t.Helper()
	dir := t.TempDir()
	args := []string{}
	vma := 0x1000000
	for _, s := range []struct {
		name string
		data []byte
	}{{".osrel", p.osrel}, {".cmdline", p.cmdline}, {".linux", p.linux}, {".initrd", p.initrd}} {
		if s.data == nil {
			continue
		}
		f := filepath.Join(dir, s.name[1:])
		if err := os.WriteFile(f, s.data, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--add-section", s.name+"="+f, "--change-section-vma", s.name+"="+hexAddr(vma))
		vma += 0x1000000
	}
	out := filepath.Join(dir, "uki.efi")
	args = append(args, stub, out)
	if b, err := exec.Command("objcopy", args...).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v\n%s", err, b)
	}
	return out
}

func hexAddr(v int) string { return "0x" + big.NewInt(int64(v)).Text(16) }

// chain extends from zero over the hashes of each input.
func chain(newH func() hash.Hash, inputs ...[]byte) string {
	pcr := make([]byte, newH().Size())
	for _, in := range inputs {
		d := newH()
		d.Write(in)
		e := newH()
		e.Write(pcr)
		e.Write(d.Sum(nil))
		pcr = e.Sum(nil)
	}
	return hex.EncodeToString(pcr)
}

func TestPredictFromObjcopyUKI(t *testing.T) {
	kernel, err := os.ReadFile(installedKernel(t))
	if err != nil {
		t.Fatal(err)
	}
	initrd := make([]byte, 7001)
	rand.Read(initrd)
	parts := ukiParts{linux: kernel[:200000], osrel: []byte("ID=inert\n"), cmdline: []byte("console=ttyS0 inert.mode=prod"), initrd: initrd}
	path := buildUKI(t, parts)
	uki, src, err := LoadUKI(path)
	if err != nil || src != path {
		t.Fatalf("load: %v", err)
	}
	config := []byte(`{"port": 8734}`)
	res, err := Predict(uki, Options{Config: config, HasConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	cfgSum := sha256.Sum256(config)
	phases := [][]byte{[]byte("enter-initrd"), []byte("inert-input-locked"), []byte("inert-storage"), []byte("ready")}
	stubEvents := [][]byte{
		[]byte(".linux\x00"), parts.linux, []byte(".osrel\x00"), parts.osrel,
		[]byte(".cmdline\x00"), parts.cmdline, []byte(".initrd\x00"), parts.initrd,
	}
	for bank, newH := range map[string]func() hash.Hash{"sha256": sha256.New, "sha384": sha512.New384} {
		if got, want := res.PCRs[bank]["11"], chain(newH, append(stubEvents, phases...)...); got != want {
			t.Errorf("%s PCR 11 = %s, want %s", bank, got, want)
		}
		if got, want := res.PCR11Steps[bank][0].Value, chain(newH, stubEvents...); got != want {
			t.Errorf("%s PCR 11 after stub = %s, want %s", bank, got, want)
		}
		wantCfg := []byte("inert-config:sha256:" + hex.EncodeToString(cfgSum[:]))
		if got, want := res.PCRs[bank]["12"], chain(newH, wantCfg, []byte("inert-wifi-credentials:absent")); got != want {
			t.Errorf("%s PCR 12 = %s, want %s", bank, got, want)
		}
		cmd16 := []byte{}
		for _, c := range string(parts.cmdline) + "\x00" {
			cmd16 = append(cmd16, byte(c), 0)
		}
		if got, want := res.PCRs[bank]["9"], chain(newH, cmd16, parts.initrd); got != want {
			t.Errorf("%s PCR 9 = %s, want %s", bank, got, want)
		}
	}
	// A different config changes PCR 12 and nothing else.
	res2, _ := Predict(uki, Options{})
	for _, bank := range []string{"sha1", "sha256", "sha384", "sha512"} {
		if res2.PCRs[bank]["12"] == res.PCRs[bank]["12"] || res2.PCRs[bank]["11"] != res.PCRs[bank]["11"] || res2.PCRs[bank]["9"] != res.PCRs[bank]["9"] {
			t.Errorf("%s: config change did not change exactly PCR 12", bank)
		}
	}
}

func TestAuthenticodeMatchesSbsign(t *testing.T) {
	kernel, _ := os.ReadFile(installedKernel(t))
	path := buildUKI(t, ukiParts{linux: kernel[:50000], cmdline: []byte("quiet")})
	dir := t.TempDir()
	key, cert := testCert(t, dir)
	signed := filepath.Join(dir, "signed.efi")
	if b, err := exec.Command("sbsign", "--key", key, "--cert", cert, "--output", signed, path).CombinedOutput(); err != nil {
		t.Fatalf("sbsign: %v\n%s", err, b)
	}
	unsignedUKI, _, _ := LoadUKI(path)
	signedUKI, _, _ := LoadUKI(signed)
	res, err := Predict(unsignedUKI, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// sbsign computed the digest it signed; read it back from the signature.
	bin, err := authenticode.Parse(bytes.NewReader(signedUKI))
	if err != nil {
		t.Fatal(err)
	}
	sigs, err := bin.Signatures()
	if err != nil || len(sigs) != 1 {
		t.Fatalf("signatures: %d %v", len(sigs), err)
	}
	ac, err := authenticode.ParseAuthenticode(sigs[0].Certificate)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Authenticode["sha256"]; got != hex.EncodeToString(ac.Digest) {
		t.Errorf("authenticode %s, sbsign signed %x", got, ac.Digest)
	}
	resSigned, _ := Predict(signedUKI, Options{})
	if resSigned.Authenticode["sha256"] != res.Authenticode["sha256"] || resSigned.UKISHA256 == res.UKISHA256 {
		t.Error("signing must change the file hash but not the authenticode digest")
	}
}

func testCert(t *testing.T, dir string) (keyPath, certPath string) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "inert test db"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	keyPath, certPath = filepath.Join(dir, "db.key"), filepath.Join(dir, "db.crt")
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), 0o600)
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	return keyPath, certPath
}

func TestLoadUKIFromDiskImage(t *testing.T) {
	kernel, _ := os.ReadFile(installedKernel(t))
	ukiPath := buildUKI(t, ukiParts{linux: kernel[:30000], osrel: []byte("ID=x\n")})
	want, _ := os.ReadFile(ukiPath)
	dir := t.TempDir()
	esp, img := filepath.Join(dir, "esp.fat"), filepath.Join(dir, "disk.img")
	run := func(name string, args ...string) {
		t.Helper()
		if b, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, b)
		}
	}
	run("truncate", "-s", "40M", esp)
	run("mkfs.vfat", "-F", "32", esp)
	run("mmd", "-i", esp, "::/EFI", "::/EFI/Boot")
	run("mcopy", "-i", esp, ukiPath, "::/EFI/Boot/BootX64.efi")
	run("truncate", "-s", "48M", img)
	run("sgdisk", "-n", "1:2048:+40M", "-t", "1:ef00", img)
	run("dd", "if="+esp, "of="+img, "bs=512", "seek=2048", "conv=notrunc", "status=none")
	got, src, err := LoadUKI(img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("UKI from %s differs from the file copied in", src)
	}
	// An image without the loader is refused with the sentinel.
	empty := filepath.Join(dir, "empty.img")
	run("truncate", "-s", "48M", empty)
	run("sgdisk", "-n", "1:2048:+40M", "-t", "1:ef00", empty)
	if _, _, err := LoadUKI(empty); !errors.Is(err, ErrNoUKIInImage) {
		t.Fatalf("empty image: %v, want ErrNoUKIInImage", err)
	}
}

func TestNotUKI(t *testing.T) {
	if _, err := Predict([]byte("MZ garbage"), Options{}); !errors.Is(err, ErrNotUKI) {
		t.Errorf("garbage: %v", err)
	}
	stubBytes, _ := os.ReadFile(stub)
	if _, err := Predict(stubBytes, Options{}); !errors.Is(err, ErrNotUKI) {
		t.Errorf("bare stub without .linux: %v", err)
	}
}

func FuzzParseUKI(f *testing.F) {
	stubBytes, _ := os.ReadFile(stub)
	f.Add(stubBytes[:4096])
	f.Add([]byte("MZ"))
	f.Fuzz(func(t *testing.T, data []byte) {
		secs, err := ParseUKI(data)
		if err != nil {
			if !errors.Is(err, ErrNotUKI) {
				t.Fatalf("error without ErrNotUKI: %v", err)
			}
			return
		}
		if len(secs) == 0 || secs[0].Name != ".linux" {
			t.Fatalf("parsed UKI without .linux first: %v", secs)
		}
	})
}

// installedKernel is the newest installed Debian kernel image (deps.sh
// installs linux-image-amd64); tests use its bytes as a real .linux.
func installedKernel(t testing.TB) string {
	t.Helper()
	k, err := filepath.Glob("/boot/vmlinuz-*")
	if err != nil || len(k) == 0 {
		t.Fatalf("no /boot/vmlinuz-*: %v", err)
	}
	return k[len(k)-1]
}
