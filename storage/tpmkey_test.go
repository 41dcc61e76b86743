package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"inert/storage/luks2"
)

func sha256Sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// trialPolicy asks the TPM itself for the PolicyPCR digest of the current
// PCR values: the independent oracle for the token's tpm2-policy-hash.
func trialPolicy(t *testing.T, tpm *testTPM, pcrs []int) string {
	t.Helper()
	tp, err := tpm.opener()()
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	sess, closeSess, err := tpm2.PolicySession(tp, tpm2.TPMAlgSHA256, 16, tpm2.Trial())
	if err != nil {
		t.Fatal(err)
	}
	defer closeSess()
	if _, err := (tpm2.PolicyPCR{PolicySession: sess.Handle(), Pcrs: selection(pcrs)}).Execute(tp); err != nil {
		t.Fatal(err)
	}
	d, err := tpm2.PolicyGetDigest{PolicySession: sess.Handle()}.Execute(tp)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(d.PolicyDigest.Buffer)
}

func metaWith(tokens ...json.RawMessage) *luks2.Metadata {
	m := &luks2.Metadata{Tokens: map[string]json.RawMessage{}}
	for i, tok := range tokens {
		m.Tokens[string(rune('0'+i))] = tok
	}
	return m
}

func TestTPMKeySealUnseal(t *testing.T) {
	tpm := startSwtpm(t)
	tpm.extend(t, 11, "inert-storage")
	key := TPMKey{Open: tpm.opener()}
	ctx := context.Background()
	enr, err := key.Enroll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(enr.Tokens) != 1 || enr.KDF.Type != luks2.KDFPBKDF2 {
		t.Fatalf("enrollment %d tokens, kdf %+v", len(enr.Tokens), enr.KDF)
	}
	var tok map[string]any
	if err := json.Unmarshal(enr.Tokens[0], &tok); err != nil {
		t.Fatal(err)
	}
	if got, want := tok["tpm2-policy-hash"], trialPolicy(t, tpm, DefaultTPMPCRs); got != want {
		t.Fatalf("policy hash %v, the TPM computes %s", got, want)
	}
	if tok["type"] != "systemd-tpm2" || tok["tpm2-pcr-bank"] != "sha256" || tok["tpm2-primary-alg"] != "ecc" || tok["tpm2-pin"] != false {
		t.Fatalf("token %v", tok)
	}
	// systemd's framing: the passphrase is base64 of a 32-byte secret.
	if raw, err := base64.StdEncoding.DecodeString(string(enr.Passphrase)); err != nil || len(raw) != 32 {
		t.Fatalf("passphrase is not base64 of 32 bytes: %v", err)
	}

	// cryptsetup accepts the token and opens the keyslot with the passphrase.
	img := filepath.Join(t.TempDir(), "vol.img")
	f, _ := os.Create(img)
	f.Truncate(8 << 20)
	if _, err := luks2.Format(f, 8<<20, bytes.Repeat([]byte{7}, 64), luks2.FormatOptions{
		Keyslots: []luks2.KeyslotSpec{{Passphrase: enr.Passphrase, KDF: enr.KDF}}, Tokens: enr.Tokens,
	}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	kf := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(kf, enr.Passphrase, 0o600)
	if out, err := exec.Command("cryptsetup", "open", "--test-passphrase", "--key-file", kf, img).CombinedOutput(); err != nil {
		t.Fatalf("cryptsetup refuses the sealed passphrase: %v %s", err, out)
	}
	dump, _ := exec.Command("cryptsetup", "luksDump", img).Output()
	if !bytes.Contains(dump, []byte("systemd-tpm2")) {
		t.Fatalf("luksDump shows no systemd-tpm2 token:\n%s", dump)
	}

	got, err := key.Passphrase(ctx, metaWith(enr.Tokens[0]))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, enr.Passphrase) {
		t.Fatal("unsealed passphrase differs from the enrolled one")
	}

	// One fault per case; the PCR change comes last because it sticks.
	retoken := func(edit func(m map[string]any)) json.RawMessage {
		var m map[string]any
		json.Unmarshal(enr.Tokens[0], &m)
		edit(m)
		b, _ := json.Marshal(m)
		return b
	}
	for _, tc := range []struct {
		name string
		key  TPMKey
		meta *luks2.Metadata
		want error
	}{
		{"no token", key, metaWith(), ErrTPMToken},
		{"two tokens", key, metaWith(enr.Tokens[0], enr.Tokens[0]), ErrTPMToken},
		{"weaker PCR set in token", key, metaWith(retoken(func(m map[string]any) { m["tpm2-pcrs"] = []int{7} })), ErrTPMToken},
		{"appliance seals to other PCRs", TPMKey{Open: tpm.opener(), PCRs: []int{7, 11}}, metaWith(enr.Tokens[0]), ErrTPMToken},
		{"sha1 bank", key, metaWith(retoken(func(m map[string]any) { m["tpm2-pcr-bank"] = "sha1" })), ErrTPMToken},
		{"pin", key, metaWith(retoken(func(m map[string]any) { m["tpm2-pin"] = true })), ErrTPMToken},
		{"policy hash swapped", key, metaWith(retoken(func(m map[string]any) { m["tpm2-policy-hash"] = hex.EncodeToString(make([]byte, 32)) })), ErrTPMToken},
		{"truncated blob", key, metaWith(retoken(func(m map[string]any) { m["tpm2-blob"] = m["tpm2-blob"].(string)[:40] })), ErrTPMToken},
		{"no TPM", TPMKey{}, metaWith(enr.Tokens[0]), ErrTPMUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.key.Passphrase(ctx, tc.meta); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}

	tpm.extend(t, 12, "another operator config")
	if _, err := key.Passphrase(ctx, metaWith(enr.Tokens[0])); !errors.Is(err, ErrPCRMismatch) {
		t.Fatalf("after PCR 12 changed: got %v, want ErrPCRMismatch", err)
	}
}

// TestProvisionWithTPM: the whole marker-gated path with the real sealing:
// first boot formats, second reopens, a changed PCR 11 leaves the volume
// locked and byte-identical.
func TestProvisionWithTPM(t *testing.T) {
	tpm := startSwtpm(t)
	r := newRig(t, []byte(Marker))
	src := TPMKey{Open: tpm.opener()}
	ctx := context.Background()
	st, err := r.p.Provision(ctx, r.part, r.spec, src)
	if err != nil {
		t.Fatal(err)
	}
	if !st.FormattedLUKS || st.KeySource != "tpm" {
		t.Fatalf("state %+v", st)
	}
	clear(r.m.mapped)
	st2, err := r.p.Provision(ctx, r.part, r.spec, src)
	if err != nil {
		t.Fatal(err)
	}
	if st2.FormattedLUKS || st2.VolumeID != st.VolumeID || !bytes.Equal(r.m.keys[0], r.m.keys[1]) {
		t.Fatalf("reopen state %+v", st2)
	}
	clear(r.m.mapped)
	before := r.digest(t)
	tpm.extend(t, 11, "ready")
	st3, err := r.p.Provision(ctx, r.part, r.spec, src)
	if !errors.Is(err, ErrPCRMismatch) || !errors.Is(err, ErrKeySource) {
		t.Fatalf("after the lock phase: got %v", err)
	}
	if st3.Reason == "" || len(r.m.mapped) != 0 || r.digest(t) != before {
		t.Fatalf("refused unseal: state %+v mapped %v, or the volume changed", st3, r.m.mapped)
	}
}

func FuzzTPMToken(f *testing.F) {
	f.Add([]byte(`{"type":"systemd-tpm2","keyslots":["0"],"tpm2-blob":"AAEA","tpm2-pcrs":[7],"tpm2-pcr-bank":"sha256","tpm2-policy-hash":"00"}`))
	f.Add([]byte(`{"type":"systemd-tpm2","keyslots":["0"],"tpm2-blob":"AAIAAAAIAAEAAgAAAAA=","tpm2-pcrs":[7,11,12],"tpm2-pcr-bank":"sha256","tpm2-primary-alg":"ecc","tpm2-policy-hash":"` + hex.EncodeToString(make([]byte, 32)) + `"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, s, err := parseTPMToken(b)
		if err == nil && (s == nil || tok.Type != TPMTokenType || len(s.policy) != 32) {
			t.Fatalf("accepted an incomplete token %+v", tok)
		}
	})
}
