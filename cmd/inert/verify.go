package main

import (
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-sev-guest/verify/trust"

	"inert/boot/measure"
	"inert/boot/measure/expect"
	"inert/boot/measure/snp"
)

func init() {
	register("verify snp", "verify a stored SEV-SNP report against AMD's roots", runVerifySNP)
	register("verify evidence", "check a boot's evidence.json against the image's predicted PCRs and replay its logs", runVerifyEvidence)
}

func runVerifyEvidence(args []string) error {
	fs := flag.NewFlagSet("verify evidence", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: inert verify evidence --image IMAGE_OR_UKI [flags] EVIDENCE_JSON\n\nEVIDENCE_JSON is the demo service's /evidence.json (its pcrs, event_log and\nfirmware_log). Checks PCR 7, 9, 11 and 12 of every bank against `inert expect`\nfor the same image, options and banks, PCR 15 is zero, and that the firmware\nlog and inert's event log replay to the live PCR 11 and 12.\n\nflags:")
		fs.PrintDefaults()
	}
	image := fs.String("image", "", "the disk image or UKI that booted (required)")
	predict := predictionFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *image == "" {
		fs.Usage()
		return fmt.Errorf("expected --image and exactly one EVIDENCE_JSON argument")
	}
	b, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	boot, err := expect.ParseEvidence(b)
	if err != nil {
		return err
	}
	var banks []measure.Bank
	for _, name := range boot.PCRs.Banks() {
		bank, err := measure.BankByName(name)
		if err != nil {
			return err
		}
		banks = append(banks, bank)
	}
	want, _, err := predict(*image, banks)
	if err != nil {
		return err
	}
	ok, err := expect.Check(boot, want)
	for _, line := range ok {
		fmt.Println("ok:", line)
	}
	if err != nil {
		return fmt.Errorf("the evidence does not match the image:\n%w", err)
	}
	fmt.Println("ok: the evidence matches the image")
	return nil
}

func runVerifySNP(args []string) error {
	fs := flag.NewFlagSet("verify snp", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: inert verify snp [flags] REPORT\n\nREPORT is snp-report.bin from the run directory. The VCEK comes from the\ncertificate table (default: snp-certs.bin next to REPORT) or, with --fetch, from\nAMD's KDS.\n\nflags:")
		fs.PrintDefaults()
	}
	measurement := fs.String("measurement", "", "expected launch MEASUREMENT (96 hex digits)")
	reportData := fs.String("report-data", "", "expected REPORT_DATA (128 hex digits)")
	logPath := fs.String("log", "", "compute the expected REPORT_DATA from this tpm2-measure.log (with --config)")
	configPath := fs.String("config", "", "operator config.json for the binding (absent when not given)")
	certsPath := fs.String("certs", "", "certificate table (default: snp-certs.bin next to REPORT when present)")
	fetch := fs.Bool("fetch", false, "fetch a missing VCEK from AMD's key distribution service (network)")
	allowDebug := fs.Bool("allow-debug", false, "accept a guest whose policy allows debugging")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("expected exactly one REPORT argument")
	}
	raw, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	opts := snp.VerifyOptions{AllowDebug: *allowDebug}
	if opts.Measurement, err = hexFlag("measurement", *measurement, 48); err != nil {
		return err
	}
	if opts.ReportData, err = hexFlag("report-data", *reportData, 64); err != nil {
		return err
	}
	if *logPath != "" || *configPath != "" {
		if opts.ReportData != nil {
			return fmt.Errorf("give either --report-data or --log/--config, not both")
		}
		var logBytes, cfg []byte
		if *logPath != "" {
			if logBytes, err = os.ReadFile(*logPath); err != nil {
				return err
			}
		}
		if *configPath != "" {
			if cfg, err = os.ReadFile(*configPath); err != nil {
				return err
			}
		}
		rd := snp.NewBinding(logBytes, cfg).ReportData()
		opts.ReportData = rd[:]
	}
	certs := *certsPath
	if certs == "" {
		if p := filepath.Join(filepath.Dir(fs.Arg(0)), snp.CertsFile); fileExists(p) {
			certs = p
		}
	}
	if certs != "" {
		if opts.Certs, err = os.ReadFile(certs); err != nil {
			return err
		}
	}
	if *fetch {
		opts.Getter = trust.DefaultHTTPSGetter()
	}
	rep, err := snp.Verify(raw, opts)
	if err != nil {
		return err
	}
	fmt.Printf("ok: signature chains to AMD's roots\nmeasurement %x\nreport_data %x\nvmpl %d policy 0x%x\n",
		rep.GetMeasurement(), rep.GetReportData(), rep.GetVmpl(), rep.GetPolicy())
	return nil
}

func hexFlag(name, value string, size int) ([]byte, error) {
	if value == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(value)
	if err != nil || len(b) != size {
		return nil, fmt.Errorf("--%s must be %d hex digits", name, 2*size)
	}
	return b, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
