package snp

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	test "github.com/google/go-sev-guest/testing"
	"github.com/google/go-sev-guest/verify/trust"
)

var testNow = time.Date(2026, time.January, 5, 0, 0, 0, 0, time.UTC)

// fakeDevice answers REPORT_DATA rd with a report carrying answer (usually
// rd itself), signed by go-sev-guest's test-only AMD chain.
func fakeDevice(t *testing.T, rd [64]byte, answer [64]byte, fwErr abi.SevFirmwareStatus) (*test.Device, map[string][]*trust.AMDRootCerts) {
	t.Helper()
	tc := test.TestCase{Name: "inert", Input: rd, Output: test.CreateRawReport(&test.TestReportOptions{ReportData: answer[:]}), FwErr: fwErr}
	d, err := test.TcDevice([]test.TestCase{tc}, &test.DeviceOptions{Now: testNow, Product: abi.DefaultSevProduct()})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Open(""); err != nil {
		t.Fatal(err)
	}
	root := trust.AMDRootCertsProduct(test.GetProductLine())
	root.ProductCerts = &trust.ProductCerts{Ark: d.Signer.Ark, Ask: d.Signer.Ask}
	return d, map[string][]*trust.AMDRootCerts{test.GetProductLine(): {root}}
}

func TestBindingIsDocumentedSHA512(t *testing.T) {
	log, cfg := []byte("\x1e{\"pcr\":11}\n"), []byte(`{"a":1}`)
	b := NewBinding(log, cfg)
	ls, cs := sha256.Sum256(log), sha256.Sum256(cfg)
	want := sha512.Sum512(append(append([]byte("inert-snp-binding-v1\x00"), ls[:]...), cs[:]...))
	if got := b.ReportData(); got != want {
		t.Fatalf("REPORT_DATA %x, want %x", got, want)
	}
	none := NewBinding(nil, nil)
	if none.LogSHA256 != [32]byte{} || none.ConfigSHA256 != [32]byte{} || none.ReportData() == b.ReportData() {
		t.Fatal("absent inputs must be zeros and give a different REPORT_DATA")
	}
}

func TestRequestStoreVerify(t *testing.T) {
	b := NewBinding([]byte("log"), []byte("{}"))
	rd := b.ReportData()
	d, roots := fakeDevice(t, rd, rd, 0)
	rep, err := Request(d, b)
	if err != nil {
		t.Fatal(err)
	}
	runDir := t.TempDir()
	if err := Store(runDir, rep, d.Certs); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(runDir, ReportBinFile))
	certs, _ := os.ReadFile(filepath.Join(runDir, CertsFile))
	js, _ := os.ReadFile(filepath.Join(runDir, ReportJSONFile))
	var generic map[string]any
	if err := json.Unmarshal(js, &generic); err != nil || generic["reportData"] == nil {
		t.Fatalf("report JSON: %v %s", err, js)
	}
	base := VerifyOptions{Certs: certs, TrustedRoots: roots, Product: abi.DefaultSevProduct(), Now: testNow, AllowDebug: true}
	ok := base
	ok.ReportData = rd[:]
	if _, err := Verify(raw, ok); err != nil {
		t.Fatalf("verify good report: %v", err)
	}
	other := NewBinding([]byte("log"), []byte(`{"x":1}`)).ReportData()
	cases := map[string]func(o *VerifyOptions, raw []byte) []byte{
		"report data of another config": func(o *VerifyOptions, raw []byte) []byte { o.ReportData = other[:]; return raw },
		"wrong measurement":             func(o *VerifyOptions, raw []byte) []byte { o.Measurement = bytes.Repeat([]byte{1}, 48); return raw },
		"debug guest not allowed":       func(o *VerifyOptions, raw []byte) []byte { o.AllowDebug = false; return raw },
		"untrusted roots": func(o *VerifyOptions, raw []byte) []byte {
			o.TrustedRoots = nil // AMD's real roots never signed the test chain
			return raw
		},
		"no VCEK offline": func(o *VerifyOptions, raw []byte) []byte { o.Certs = nil; return raw },
		"tampered report": func(o *VerifyOptions, raw []byte) []byte {
			bad := bytes.Clone(raw)
			bad[0x50] ^= 1 // a REPORT_DATA bit, under the signature
			return bad
		},
		"truncated": func(o *VerifyOptions, raw []byte) []byte { return raw[:100] },
	}
	for name, fault := range cases {
		o := base
		r := fault(&o, raw)
		_, err := Verify(r, o)
		t.Logf("%s: %v", name, err)
		if !errors.Is(err, ErrVerify) {
			t.Errorf("%s: %v, want ErrVerify", name, err)
		}
	}
}

func TestRequestFaults(t *testing.T) {
	b := NewBinding(nil, []byte("{}"))
	rd := b.ReportData()
	var wrong [64]byte
	wrong[0] = 1
	cases := map[string]struct {
		answer [64]byte
		fw     abi.SevFirmwareStatus
	}{
		"firmware refuses":      {rd, abi.ResourceLimit},
		"report lacks our data": {wrong, 0},
	}
	for name, c := range cases {
		d, _ := fakeDevice(t, rd, c.answer, c.fw)
		if _, err := Request(d, b); !errors.Is(err, ErrReport) {
			t.Errorf("%s: %v, want ErrReport", name, err)
		}
	}
}

func TestDetect(t *testing.T) {
	root := t.TempDir()
	if Detect(root).Found() {
		t.Fatal("found SNP in an empty tree")
	}
	os.MkdirAll(filepath.Join(root, ConfigfsTSM), 0o755)
	if d := Detect(root); !d.Configfs || d.Device {
		t.Fatalf("configfs only: %+v", d)
	}
	os.MkdirAll(filepath.Join(root, "dev"), 0o755)
	os.WriteFile(filepath.Join(root, DevicePath), nil, 0o600)
	if d := Detect(root); !d.Configfs || !d.Device {
		t.Fatalf("both: %+v", d)
	}
}

func FuzzVerifyReport(f *testing.F) {
	r := test.CreateRawReport(&test.TestReportOptions{})
	f.Add(r[:])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, err := Verify(raw, VerifyOptions{Now: testNow})
		if err == nil {
			t.Fatal("unsigned fuzz input verified")
		}
		if !errors.Is(err, ErrVerify) {
			t.Fatalf("error without ErrVerify: %v", err)
		}
	})
}
