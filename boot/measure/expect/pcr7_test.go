package expect

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"inert/boot/measure"
	"inert/boot/measure/tcglog"
)

// testdata/{PK,KEK,db}.esl are the lists enrolled in the OVMF boot that wrote
// ../tcglog/testdata/ovmf-sb-on.log; ovmf-sb-off.log is a boot with nothing
// enrolled. OVMF's own digests are the independent expectation.
func firmwarePCR7(t *testing.T, name string) ([]tcglog.Event, map[string]map[string]string) {
	t.Helper()
	raw, err := os.ReadFile("../tcglog/testdata/" + name + ".log")
	if err != nil {
		t.Fatal(err)
	}
	events, err := tcglog.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	var pcrs map[string]map[string]string
	b, _ := os.ReadFile("../tcglog/testdata/" + name + ".pcrs.json")
	if err := json.Unmarshal(b, &pcrs); err != nil {
		t.Fatal(err)
	}
	return tcglog.OfPCR(events, 7), pcrs
}

func TestPCR7MatchesOVMF(t *testing.T) {
	testdataKeys := t.TempDir()
	os.MkdirAll(filepath.Join(testdataKeys, "enrol"), 0o755)
	for _, n := range []string{"PK", "KEK", "db"} {
		b, err := os.ReadFile("testdata/" + n + ".esl")
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(testdataKeys, "enrol", n+".esl"), b, 0o600)
	}
	on, err := LoadSecureBoot(testdataKeys)
	if err != nil {
		t.Fatal(err)
	}
	for name, sb := range map[string]SecureBoot{"ovmf-sb-off": Off, "ovmf-sb-on": on} {
		fw, live := firmwarePCR7(t, name)
		// Everything before the authority needs no UKI.
		predicted := driverConfigEvents(sb)
		if sb.Enabled {
			lists, err := ParseSignatureLists(sb.DB)
			if err != nil || len(lists) != 1 || len(lists[0].Entries) != 1 {
				t.Fatalf("db.esl: %v", err)
			}
			predicted = append(predicted, authorityEvent(lists[0].Entries[0]))
		}
		if len(predicted) != len(fw) {
			t.Fatalf("%s: %d predicted PCR 7 events, firmware logged %d", name, len(predicted), len(fw))
		}
		for bank, pcrs := range live {
			b, _ := measure.BankByName(bank)
			for i, e := range fw {
				if got := b.Digest(predicted[i].Data); !bytes.Equal(got, e.Digests[bank]) {
					t.Errorf("%s %s event %d (%s): digest %x, OVMF %x", name, bank, i, predicted[i], got, e.Digests[bank])
				}
			}
			if got := hex.EncodeToString(PCR7(b, predicted)); got != pcrs["7"] {
				t.Errorf("%s %s PCR 7 = %s, TPM said %s", name, bank, got, pcrs["7"])
			}
		}
	}
}

// TestAuthoritySelection: the authority is the db entry whose certificate
// verifies the UKI, found by walking db in order; a UKI no entry verifies has
// no PCR 7 (firmware refuses it).
func TestAuthoritySelection(t *testing.T) {
	kernel, _ := os.ReadFile(installedKernel(t))
	path := buildUKI(t, ukiParts{linux: kernel[:40000], cmdline: []byte("quiet")})
	dir := t.TempDir()
	keyA, certA := testCert(t, filepath.Join(dir))
	dirB := t.TempDir()
	_, certB := testCert(t, dirB)
	signed := filepath.Join(dir, "signed.efi")
	if b, err := exec.Command("sbsign", "--key", keyA, "--cert", certA, "--output", signed, path).CombinedOutput(); err != nil {
		t.Fatalf("sbsign: %v\n%s", err, b)
	}
	uki, _, err := LoadUKI(signed)
	if err != nil {
		t.Fatal(err)
	}
	derA, derB := derOf(t, certA), derOf(t, certB)
	ownerA, ownerB := bytes.Repeat([]byte{0xaa}, 16), bytes.Repeat([]byte{0xbb}, 16)
	db := append(esl(ownerB, derB), esl(ownerA, derA)...)
	events, err := PCR7Events(uki, SecureBoot{Enabled: true, PK: []byte{}, KEK: []byte{}, DB: db})
	if err != nil {
		t.Fatal(err)
	}
	last := events[len(events)-1]
	if last.Type != tcglog.EvEFIVariableAuthority || !bytes.Equal(last.Variable.Data, append(ownerA, derA...)) {
		t.Errorf("authority %s with data %x..., want A's entry", last, last.Variable.Data[:20])
	}
	if len(events) != 7 || events[0].Variable.Name != "SecureBoot" || events[0].Variable.Data[0] != 1 {
		t.Errorf("events %v", events)
	}
	if _, err := PCR7Events(uki, SecureBoot{Enabled: true, DB: esl(ownerB, derB)}); !errors.Is(err, ErrNotAuthorized) {
		t.Errorf("db without the signer: %v, want ErrNotAuthorized", err)
	}
	unsigned, _, _ := LoadUKI(path)
	if _, err := PCR7Events(unsigned, SecureBoot{Enabled: true, DB: db}); !errors.Is(err, ErrNotAuthorized) {
		t.Errorf("unsigned UKI: %v, want ErrNotAuthorized", err)
	}
	// Predict carries it through: Secure Boot changes PCR 7 and nothing else.
	off, err := Predict(uki, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sb := SecureBoot{Enabled: true, DB: db}
	onRes, err := Predict(uki, Options{SecureBoot: &sb})
	if err != nil {
		t.Fatal(err)
	}
	for bank := range off.PCRs {
		for pcr, v := range off.PCRs[bank] {
			if same := onRes.PCRs[bank][pcr] == v; same != (pcr != "7") {
				t.Errorf("%s PCR %s: Secure Boot on/off same=%v", bank, pcr, same)
			}
		}
	}
}

func derOf(t *testing.T, certPath string) []byte {
	b, _ := os.ReadFile(certPath)
	blk, _ := pem.Decode(b)
	if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
		t.Fatal(err)
	}
	return blk.Bytes
}

// esl builds one EFI_SIGNATURE_LIST of one X.509 entry, by the UEFI spec's
// layout (a second implementation of what ParseSignatureLists reads).
func esl(owner, der []byte) []byte {
	x509GUID := []byte{0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a, 0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72}
	out := append([]byte{}, x509GUID...)
	out = binary.LittleEndian.AppendUint32(out, uint32(28+16+len(der)))
	out = binary.LittleEndian.AppendUint32(out, 0)
	out = binary.LittleEndian.AppendUint32(out, uint32(16+len(der)))
	return append(append(out, owner...), der...)
}

func TestLoadSecureBootFaults(t *testing.T) {
	good, _ := os.ReadFile("testdata/db.esl")
	cases := map[string]func(dir string){
		"no PK":       func(dir string) { os.Remove(filepath.Join(dir, "enrol", "PK.esl")) },
		"db garbage":  func(dir string) { os.WriteFile(filepath.Join(dir, "enrol", "db.esl"), []byte("garbage"), 0o600) },
		"KEK cut":     func(dir string) { os.WriteFile(filepath.Join(dir, "enrol", "KEK.esl"), good[:100], 0o600) },
		"dbx garbage": func(dir string) { os.WriteFile(filepath.Join(dir, "enrol", "dbx.esl"), good[:30], 0o600) },
	}
	for name, fault := range cases {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "enrol"), 0o755)
		for _, n := range []string{"PK", "KEK", "db"} {
			os.WriteFile(filepath.Join(dir, "enrol", n+".esl"), good, 0o600)
		}
		if _, err := LoadSecureBoot(dir); err != nil {
			t.Fatalf("good dir: %v", err)
		}
		fault(dir)
		if _, err := LoadSecureBoot(dir); !errors.Is(err, ErrSecureBootKeys) {
			t.Errorf("%s: %v, want ErrSecureBootKeys", name, err)
		}
	}
}

func FuzzParseSignatureLists(f *testing.F) {
	good, _ := os.ReadFile("testdata/db.esl")
	f.Add(good)
	f.Add(append(bytes.Clone(good), good...))
	f.Fuzz(func(t *testing.T, b []byte) {
		lists, err := ParseSignatureLists(b)
		if err != nil {
			if !errors.Is(err, ErrSignatureList) {
				t.Fatalf("error without ErrSignatureList: %v", err)
			}
			return
		}
		n := 0
		for _, l := range lists {
			for _, e := range l.Entries {
				n += len(e)
			}
		}
		if n > len(b) {
			t.Fatalf("entries hold %d bytes of a %d-byte input", n, len(b))
		}
	})
}
