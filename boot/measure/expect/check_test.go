package expect

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"inert/boot/measure"
)

// testdata/evidence-sb-off.json holds the measurement fields of a real
// demo boot (OVMF, swtpm with sha256 and sha384, Secure Boot off, no
// config). The prediction below is taken from the TPM's own values and the
// measure package's documented PCR 12 strings, so Check is tested against
// what a real TPM said, not against itself.
func realBoot(t *testing.T) (Boot, *Result) {
	t.Helper()
	b, err := os.ReadFile("testdata/evidence-sb-off.json")
	if err != nil {
		t.Fatal(err)
	}
	boot, err := ParseEvidence(b)
	if err != nil {
		t.Fatal(err)
	}
	want := &Result{PCRs: map[string]map[string]string{}, PCR12Events: []string{"inert-config:none", "inert-wifi-credentials:absent"}}
	for _, bank := range []string{"sha256", "sha384"} {
		want.PCRs[bank] = map[string]string{}
		for _, pcr := range PredictedPCRs {
			want.PCRs[bank][strconv.Itoa(pcr)] = hex.EncodeToString(boot.PCRs.Get(bank, pcr))
		}
	}
	return boot, want
}

func TestCheckRealBoot(t *testing.T) {
	boot, want := realBoot(t)
	ok, err := Check(boot, want)
	if err != nil {
		t.Fatalf("a consistent boot fails: %v", err)
	}
	// 4 predicted PCRs + PCR 15 + 2 replays, per bank.
	if len(ok) != 2*7 {
		t.Errorf("%d checks held, want 14: %q", len(ok), ok)
	}
}

// TestCheckFaults injects one fault per case; each must be a mismatch
// naming what differs.
func TestCheckFaults(t *testing.T) {
	cases := map[string]struct {
		fault func(b *Boot, w *Result)
		says  string
	}{
		"PCR 9 differs": {func(b *Boot, w *Result) { w.PCRs["sha384"]["9"] = strings.Repeat("00", 48) }, "sha384 PCR 9"},
		"PCR 15 extended": {func(b *Boot, w *Result) {
			bk, _ := measure.BankByName("sha256")
			b.PCRs.Set("sha256", 15, bk.Digest([]byte("x")))
		}, "PCR 15"},
		"log record dropped": {func(b *Boot, w *Result) { b.Log = b.Log[:len(b.Log)-1] }, "replay"},
		"log record forged": {func(b *Boot, w *Result) {
			b.Log[1].Content.String = "inert-config:sha256:" + strings.Repeat("0", 64)
		}, "hashes of its string"},
		"log touches PCR 15": {func(b *Boot, w *Result) { b.Log[0].PCR = 15 }, "extends PCR 15"},
		"no firmware log":    {func(b *Boot, w *Result) { b.Firmware = nil }, "no firmware log"},
		"another config predicted": {func(b *Boot, w *Result) {
			w.PCR12Events = measure.ConfigEvents([]byte("{}"), true, false)
		}, "PCR 12 events"},
		"no common bank": {func(b *Boot, w *Result) { w.PCRs = map[string]map[string]string{"sha1": {}} }, "share none"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			boot, want := realBoot(t)
			c.fault(&boot, want)
			_, err := Check(boot, want)
			if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), c.says) {
				t.Errorf("err %v: want ErrMismatch saying %q", err, c.says)
			}
		})
	}
}

func TestParseEvidenceFaults(t *testing.T) {
	good, _ := os.ReadFile("testdata/evidence-sb-off.json")
	var doc map[string]any
	json.Unmarshal(good, &doc)
	cases := map[string]func(m map[string]any){
		"unknown bank":    func(m map[string]any) { m["pcrs"] = map[string]any{"md5": map[string]string{"1": "00"}} },
		"short PCR value": func(m map[string]any) { m["pcrs"] = map[string]any{"sha256": map[string]string{"1": "00"}} },
		"PCR index 24": func(m map[string]any) {
			m["pcrs"] = map[string]any{"sha256": map[string]string{"24": strings.Repeat("00", 32)}}
		},
		"firmware not hex":       func(m map[string]any) { m["firmware_log"] = "zz" },
		"firmware garbage":       func(m map[string]any) { m["firmware_log"] = "00112233" },
		"record without digests": func(m map[string]any) { m["event_log"] = []any{map[string]any{"pcr": 11}} },
	}
	for name, fault := range cases {
		var m map[string]any
		json.Unmarshal(good, &m)
		fault(m)
		b, _ := json.Marshal(m)
		if _, err := ParseEvidence(b); !errors.Is(err, ErrEvidence) {
			t.Errorf("%s: %v, want ErrEvidence", name, err)
		}
	}
	if _, err := ParseEvidence([]byte("[1]")); !errors.Is(err, ErrEvidence) {
		t.Errorf("not an object: %v", err)
	}
}

func FuzzParseEvidence(f *testing.F) {
	good, _ := os.ReadFile("testdata/evidence-sb-off.json")
	f.Add(good)
	f.Add([]byte(`{"pcrs":{"sha256":{"7":"00"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		boot, err := ParseEvidence(b)
		if err != nil {
			if !errors.Is(err, ErrEvidence) {
				t.Fatalf("error without ErrEvidence: %v", err)
			}
			return
		}
		_, _ = Check(boot, &Result{})
	})
}
