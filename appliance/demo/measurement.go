package demo

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
)

// FirmwareLogPath is the firmware's TCG event log under /sys: the events the
// firmware, the stub and Linux's EFI stub measured before inert ran (PCRs
// 0-9). Verifiers replay PCR 4 from it; the evidence carries it so they can.
const FirmwareLogPath = "kernel/security/tpm0/binary_bios_measurements"

// maxFirmwareLog bounds the firmware log copied into the evidence; OVMF's is
// a few KiB.
const maxFirmwareLog = 1 << 20

// SNPReportFile is the SNP report inert stored in the run directory
// (boot/measure/snp.ReportJSONFile; not imported, so the demo does not link
// go-sev-guest).
const SNPReportFile = "snp-report.json"

// firmwareLog returns the firmware event log as hex, "" when there is none.
func (s *Server) firmwareLog() string {
	f, err := os.Open(filepath.Join(s.sysRoot(), FirmwareLogPath))
	if err != nil {
		return ""
	}
	defer f.Close()
	b := make([]byte, 0, 64<<10)
	buf := make([]byte, 32<<10)
	for len(b) <= maxFirmwareLog {
		n, err := f.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil || n == 0 {
			break
		}
	}
	if len(b) > maxFirmwareLog {
		return ""
	}
	return hex.EncodeToString(b)
}

// snpReport returns the stored SNP report (JSON), or nil.
func (s *Server) snpReport() json.RawMessage {
	r := rawOr(s.read(SNPReportFile), "")
	if len(r) == 0 {
		return nil
	}
	return r
}
