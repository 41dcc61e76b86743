package appliance

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/client"
	sevtest "github.com/google/go-sev-guest/testing"

	"inert/appliance/profiles"
	"inert/boot"
	"inert/boot/measure/snp"
)

// snpWorker is a worker on a fake root that has found an SNP guest and read
// config from the ESP.
func snpWorker(t *testing.T, require string, config []byte) (*Worker, *[]Event) {
	t.Helper()
	b, err := profiles.Manifest("demo")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	m.TEE.Require = require
	var evs []Event
	w := NewWorker(m, boot.Env{}, t.TempDir(), func(e Event) { evs = append(evs, e) })
	if err := os.MkdirAll(w.path(m.RunDir), 0o755); err != nil {
		t.Fatal(err)
	}
	w.tee = boot.TEEInfo{SNP: true, SNPSource: "/dev/sev-guest"}
	if config != nil {
		w.files = boot.OperatorFiles{ConfigPath: "/EFI/boot/config.json", ConfigRaw: config}
	}
	return w, &evs
}

// fakeSNP is go-sev-guest's fake /dev/sev-guest, answering exactly the
// REPORT_DATA rd (with a report carrying answer) or failing with fw.
func fakeSNP(t *testing.T, rd, answer [64]byte, fw abi.SevFirmwareStatus) func() (client.Device, error) {
	t.Helper()
	tc := sevtest.TestCase{Name: "inert", Input: rd, Output: sevtest.CreateRawReport(&sevtest.TestReportOptions{ReportData: answer[:]}), FwErr: fw}
	d, err := sevtest.TcDevice([]sevtest.TestCase{tc},
		&sevtest.DeviceOptions{Now: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC), Product: abi.DefaultSevProduct()})
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

// wantReportData is the documented binding computed here by hand: no TPM
// means no log (zeros), the config digest is of the bytes as read.
func wantReportData(config []byte) [64]byte {
	var logSum [32]byte
	cfgSum := sha256.Sum256(config)
	return sha512.Sum512(append(append([]byte("inert-snp-binding-v1\x00"), logSum[:]...), cfgSum[:]...))
}

func TestAttestSNPStoresBoundReport(t *testing.T) {
	config := []byte(`{"port": 8734}`)
	w, _ := snpWorker(t, "snp", config)
	rd := wantReportData(config)
	if err := w.attestSNP(fakeSNP(t, rd, rd, 0)); err != nil {
		t.Fatalf("attestSNP: %v", err)
	}
	raw, err := os.ReadFile(w.path(filepath.Join(w.M.RunDir, snp.ReportBinFile)))
	if err != nil {
		t.Fatal(err)
	}
	pb, err := abi.ReportToProto(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pb.GetReportData(), rd[:]) {
		t.Errorf("stored REPORT_DATA %x, want %x", pb.GetReportData(), rd)
	}
	if _, err := os.Stat(w.path(filepath.Join(w.M.RunDir, snp.ReportJSONFile))); err != nil {
		t.Errorf("no JSON report for the evidence: %v", err)
	}
}

// TestAttestSNPFaults injects one fault per case and checks the action:
// halt when SNP is required, otherwise carry on and say why in the run dir.
func TestAttestSNPFaults(t *testing.T) {
	config := []byte(`{"a": 1}`)
	rd := wantReportData(config)
	var other [64]byte
	other[0] = 1
	cases := map[string]struct {
		require string
		open    func(t *testing.T) func() (client.Device, error)
		halt    bool
	}{
		"firmware refuses, snp required": {"snp", func(t *testing.T) func() (client.Device, error) {
			return fakeSNP(t, rd, rd, abi.ResourceLimit)
		}, true},
		"firmware refuses, not required": {"none", func(t *testing.T) func() (client.Device, error) {
			return fakeSNP(t, rd, rd, abi.ResourceLimit)
		}, false},
		"report of other data, snp required": {"snp", func(t *testing.T) func() (client.Device, error) {
			return fakeSNP(t, rd, other, 0)
		}, true},
		"device will not open, any-tee": {"any-tee", func(t *testing.T) func() (client.Device, error) {
			return func() (client.Device, error) { return nil, snp.ErrNoSNP }
		}, false},
		"device will not open, snp required": {"snp", func(t *testing.T) func() (client.Device, error) {
			return func() (client.Device, error) { return nil, snp.ErrNoSNP }
		}, true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			w, _ := snpWorker(t, c.require, config)
			err := w.attestSNP(c.open(t))
			report := w.path(filepath.Join(w.M.RunDir, snp.ReportBinFile))
			if _, serr := os.Stat(report); serr == nil {
				t.Errorf("a report was stored despite the fault")
			}
			if c.halt {
				var se *StepError
				if !errors.As(err, &se) || ClassOf(err) != ClassSecurity || ActionFor(ClassOf(err)) != ActionHalt {
					t.Fatalf("err %v: want a security halt", err)
				}
				if !errors.Is(err, snp.ErrReport) && !errors.Is(err, snp.ErrNoSNP) {
					t.Errorf("err %v does not wrap the snp sentinel", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err %v: the boot must go on without a required SNP", err)
			}
			why, rerr := os.ReadFile(w.path(filepath.Join(w.M.RunDir, snpErrorFile)))
			if rerr != nil || len(bytes.TrimSpace(why)) == 0 {
				t.Errorf("no reason recorded: %v %q", rerr, why)
			}
		})
	}
}

func TestAttestSNPOffSNPDoesNothing(t *testing.T) {
	w, evs := snpWorker(t, "none", nil)
	w.tee.SNP = false
	opened := false
	err := w.attestSNP(func() (client.Device, error) { opened = true; return nil, snp.ErrNoSNP })
	if err != nil || opened || len(*evs) != 0 {
		t.Errorf("without SNP: err %v, device opened %v, events %v", err, opened, *evs)
	}
}
