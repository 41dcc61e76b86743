package storage

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/client"
	labi "github.com/google/go-sev-guest/client/linuxabi"
	test "github.com/google/go-sev-guest/testing"

	"inert/storage/luks2"
)

// fakeLaunch is one guest launch as go-sev-guest's fake device presents
// it: the report's facts and the key the chip derives for inert's request.
type fakeLaunch struct {
	measurement byte // fills the 48-byte measurement
	policy      uint64
	svn         uint32
	tcb         uint64
	chipKey     byte // fills the 32-byte derived key
	// derivedTCB, when set, is the only TCB version the chip derives for
	// (a firmware whose committed TCB is below the token's).
	derivedTCB *uint64
	fwErr      abi.SevFirmwareStatus
	wrongData  bool
}

// Offsets of the SEV-SNP ATTESTATION_REPORT (AMD SEV-SNP ABI, table 22).
const (
	repGuestSVN    = 0x04
	repPolicy      = 0x08
	repReportData  = 0x50
	repMeasurement = 0x90
	repReportedTCB = 0x180
)

// The request inert must make, spelled from the ABI rather than from
// inert's code: ROOT_KEY_SELECT 0 (VCEK); GUEST_FIELD_SELECT bits 0 policy,
// 3 measurement, 4 guest SVN, 5 TCB version.
const wantFieldSelect = 1<<0 | 1<<3 | 1<<4 | 1<<5

func (l fakeLaunch) opener(t *testing.T) SNPOpener {
	t.Helper()
	rd := sha512.Sum512([]byte("inert-snp-zone-key-facts-v1"))
	answer := rd
	if l.wrongData {
		answer[0] ^= 1
	}
	raw := test.CreateRawReport(&test.TestReportOptions{ReportData: answer[:]})
	binary.LittleEndian.PutUint32(raw[repGuestSVN:], l.svn)
	binary.LittleEndian.PutUint64(raw[repPolicy:], l.policy)
	copy(raw[repMeasurement:repMeasurement+48], bytes.Repeat([]byte{l.measurement}, 48))
	binary.LittleEndian.PutUint64(raw[repReportedTCB:], l.tcb)
	tcb := l.tcb
	if l.derivedTCB != nil {
		tcb = *l.derivedTCB
	}
	req := labi.SnpDerivedKeyReqABI{RootKeySelect: 0, GuestFieldSelect: wantFieldSelect, Vmpl: 0, GuestSVN: l.svn, TCBVersion: tcb}
	keys := map[string][]byte{test.DerivedKeyRequestToString(&req): bytes.Repeat([]byte{l.chipKey}, 32)}
	d, err := test.TcDevice([]test.TestCase{{Input: rd, Output: raw, FwErr: l.fwErr}},
		&test.DeviceOptions{Keys: keys, Now: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC), Product: abi.DefaultSevProduct()})
	if err != nil {
		t.Fatal(err)
	}
	return func() (client.Device, error) {
		if err := d.Open(""); err != nil {
			return nil, err
		}
		return d, nil
	}
}

var baseLaunch = fakeLaunch{measurement: 0xa1, policy: 0x30000, svn: 2, tcb: 0x0b00000000000d04, chipKey: 0x5c}

// expectedSNPPassphrase is the documented framing, computed here:
// base64(HMAC-SHA256(chip key, "inert-snp-zone-v1" 0x00 salt)).
func expectedSNPPassphrase(chipKey byte, salt []byte) []byte {
	mac := hmac.New(sha256.New, bytes.Repeat([]byte{chipKey}, 32))
	mac.Write(append([]byte("inert-snp-zone-v1\x00"), salt...))
	return []byte(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
}

func TestSNPKeyEnrollRecordsTheDerivation(t *testing.T) {
	src := SNPKey{Open: baseLaunch.opener(t)}
	enr, err := src.Enroll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(enr.Tokens) != 1 || enr.KDF.Type != luks2.KDFPBKDF2 {
		t.Fatalf("enrollment tokens %d kdf %+v", len(enr.Tokens), enr.KDF)
	}
	var tok map[string]any
	if err := json.Unmarshal(enr.Tokens[0], &tok); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"type": "inert-snp", "snp-root-key": "vcek", "snp-vmpl": "0", "snp-guest-svn": "2",
		"snp-tcb-version": "0b00000000000d04", "snp-policy": "0000000000030000",
		"snp-measurement": string(bytes.Repeat([]byte("a1"), 48)),
	}
	for k, v := range want {
		if tok[k] != v {
			t.Errorf("token %s = %v, want %v", k, tok[k], v)
		}
	}
	salt, err := base64.StdEncoding.DecodeString(tok["snp-salt"].(string))
	if err != nil || len(salt) != 32 {
		t.Fatalf("salt %v %v", tok["snp-salt"], err)
	}
	if !bytes.Equal(enr.Passphrase, expectedSNPPassphrase(baseLaunch.chipKey, salt)) {
		t.Fatal("passphrase is not the documented framing of the chip's key")
	}
	// Two enrolments in one guest give two passphrases (the salt).
	again, err := src.Enroll(context.Background())
	if err != nil || bytes.Equal(again.Passphrase, enr.Passphrase) {
		t.Fatalf("second enrolment: %v, same passphrase %v", err, bytes.Equal(again.Passphrase, enr.Passphrase))
	}
}

// TestSNPKeyProvisionAndReopen formats a zone with the snp source, checks
// with cryptsetup that the expected passphrase opens it, and reopens it in
// a "later boot" of the same launch.
func TestSNPKeyProvisionAndReopen(t *testing.T) {
	r := newRig(t, []byte(Marker))
	src := SNPKey{Open: baseLaunch.opener(t)}
	st, err := r.p.Provision(context.Background(), r.part, r.spec, src)
	if err != nil || !st.FormattedLUKS || st.KeySource != "snp" {
		t.Fatalf("provision: %v %+v", err, st)
	}
	dev, size, err := OSDevices{}.OpenDevice(r.img)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := luks2.ReadSnapshot(dev, size)
	dev.Close()
	if err != nil {
		t.Fatal(err)
	}
	toks := snap.Meta.TokensOfType(SNPTokenType)
	if len(toks) != 1 {
		t.Fatalf("%d inert-snp tokens", len(toks))
	}
	var tok SNPToken
	json.Unmarshal(toks[0].Raw, &tok)
	salt, _ := base64.StdEncoding.DecodeString(tok.Salt)
	kf := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(kf, expectedSNPPassphrase(baseLaunch.chipKey, salt), 0o600)
	if out, err := exec.Command("cryptsetup", "open", "--test-passphrase", "--key-file", kf, r.img).CombinedOutput(); err != nil {
		t.Fatalf("cryptsetup does not accept the derived passphrase: %v %s", err, out)
	}
	dump, _ := exec.Command("cryptsetup", "luksDump", r.img).Output()
	if !bytes.Contains(dump, []byte(SNPTokenType)) {
		t.Fatalf("cryptsetup does not list the token:\n%s", dump)
	}
	clear(r.m.mapped)
	st, err = r.p.Provision(context.Background(), r.part, r.spec, SNPKey{Open: baseLaunch.opener(t)})
	if err != nil || st.FormattedLUKS || st.FormattedFilesystem || st.Mount == "" {
		t.Fatalf("reopen: %v %+v", err, st)
	}
}

// TestSNPKeyRefusals: one changed fact per case, each refused with its own
// error, the volume unchanged.
func TestSNPKeyRefusals(t *testing.T) {
	lowTCB := uint64(0x0a00000000000d04)
	for _, tc := range []struct {
		name   string
		launch func(l fakeLaunch) fakeLaunch
		opener func(t *testing.T) SNPOpener
		want   error
	}{
		{"another image", func(l fakeLaunch) fakeLaunch { l.measurement = 0xb2; return l }, nil, ErrSNPMismatch},
		{"another policy", func(l fakeLaunch) fakeLaunch { l.policy |= 1 << 19; return l }, nil, ErrSNPMismatch},
		{"another chip", func(l fakeLaunch) fakeLaunch { l.chipKey = 0x77; return l }, nil, luks2.ErrWrongKey},
		{"TCB rolled back", func(l fakeLaunch) fakeLaunch { l.derivedTCB = &lowTCB; return l }, nil, ErrSNPUnavailable},
		{"firmware refuses the report", func(l fakeLaunch) fakeLaunch { l.fwErr = abi.ResourceLimit; return l }, nil, ErrSNPUnavailable},
		{"report lacks our data", func(l fakeLaunch) fakeLaunch { l.wrongData = true; return l }, nil, ErrSNPUnavailable},
		{"no sev-guest device", nil, func(*testing.T) SNPOpener {
			return DeviceSNP(filepath.Join(t.TempDir(), "sev-guest"))
		}, ErrSNPUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, []byte(Marker))
			if _, err := r.p.Provision(context.Background(), r.part, r.spec, SNPKey{Open: baseLaunch.opener(t)}); err != nil {
				t.Fatal(err)
			}
			clear(r.m.mapped)
			r.mnt.mounts = nil
			before := r.digest(t)
			var open SNPOpener
			if tc.opener != nil {
				open = tc.opener(t)
			} else {
				open = tc.launch(baseLaunch).opener(t)
			}
			st, err := r.p.Provision(context.Background(), r.part, r.spec, SNPKey{Open: open})
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if st.Reason == "" || len(r.mnt.mounts) != 0 || len(r.m.mapped) != 0 || r.digest(t) != before {
				t.Fatalf("state %+v mounts %v mapped %v (or the disk changed)", st, r.mnt.mounts, r.m.mapped)
			}
		})
	}
}

func TestParseSNPTokenRejects(t *testing.T) {
	enr, err := SNPKey{Open: baseLaunch.opener(t)}.Enroll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseSNPToken(enr.Tokens[0]); err != nil {
		t.Fatalf("own token refused: %v", err)
	}
	edit := func(f func(tok map[string]any)) json.RawMessage {
		var tok map[string]any
		json.Unmarshal(enr.Tokens[0], &tok)
		f(tok)
		b, _ := json.Marshal(tok)
		return b
	}
	for name, raw := range map[string]json.RawMessage{
		"not json":             json.RawMessage(`{`),
		"other type":           edit(func(tok map[string]any) { tok["type"] = "systemd-tpm2" }),
		"two keyslots":         edit(func(tok map[string]any) { tok["keyslots"] = []string{"0", "1"} }),
		"VMRK root":            edit(func(tok map[string]any) { tok["snp-root-key"] = "vmrk" }),
		"no measurement mixed": edit(func(tok map[string]any) { tok["snp-guest-fields"] = []string{"guest-policy", "tcb-version"} }),
		"no policy mixed":      edit(func(tok map[string]any) { tok["snp-guest-fields"] = []string{"measurement"} }),
		"unknown field": edit(func(tok map[string]any) {
			tok["snp-guest-fields"] = []string{"measurement", "guest-policy", "image-id"}
		}),
		"field twice": edit(func(tok map[string]any) {
			tok["snp-guest-fields"] = []string{"measurement", "guest-policy", "measurement"}
		}),
		"vmpl 4":            edit(func(tok map[string]any) { tok["snp-vmpl"] = "4" }),
		"svn not a number":  edit(func(tok map[string]any) { tok["snp-guest-svn"] = "-1" }),
		"short tcb":         edit(func(tok map[string]any) { tok["snp-tcb-version"] = "0d04" }),
		"upper-case policy": edit(func(tok map[string]any) { tok["snp-policy"] = "00000000000300AB" }),
		"short measurement": edit(func(tok map[string]any) { tok["snp-measurement"] = "a1a1" }),
		"short salt":        edit(func(tok map[string]any) { tok["snp-salt"] = "c2FsdA==" }),
	} {
		if _, err := parseSNPToken(raw); !errors.Is(err, ErrSNPToken) {
			t.Errorf("%s: %v, want ErrSNPToken", name, err)
		}
	}
}

func FuzzParseSNPToken(f *testing.F) {
	salt := base64.StdEncoding.EncodeToString(make([]byte, 32))
	f.Add([]byte(`{"type":"inert-snp","keyslots":["0"],"snp-root-key":"vcek","snp-guest-fields":["guest-policy","measurement"],` +
		`"snp-vmpl":"0","snp-guest-svn":"0","snp-tcb-version":"0000000000000000","snp-policy":"0000000000030000",` +
		`"snp-measurement":"` + string(bytes.Repeat([]byte("00"), 48)) + `","snp-salt":"` + salt + `"}`))
	f.Add([]byte(`{"type":"inert-snp"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		der, err := parseSNPToken(b)
		if err != nil {
			if !errors.Is(err, ErrSNPToken) {
				t.Fatalf("error %v does not wrap ErrSNPToken", err)
			}
			return
		}
		// Whatever is accepted asks the chip for a VCEK-rooted key bound to
		// the measurement and the policy.
		g := der.req.GuestFieldSelect
		if !der.req.UseVCEK || !g.Measurement || !g.GuestPolicy || der.req.Vmpl > 3 || len(der.salt) != 32 || len(der.measurement) != 48 {
			t.Fatalf("accepted a weak derivation: %+v", der.req)
		}
	})
}
