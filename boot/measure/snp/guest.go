package snp

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/client"
	"google.golang.org/protobuf/encoding/protojson"
)

var (
	// ErrNoSNP means neither SNP interface exists.
	ErrNoSNP = errors.New("no SEV-SNP guest interface")
	// ErrReport is a refused or malformed report request.
	ErrReport = errors.New("SEV-SNP report failed")
)

// Paths of the guest interfaces, relative to the root.
const (
	DevicePath  = "dev/sev-guest"
	ConfigfsTSM = "sys/kernel/config/tsm/report"
)

// Detection is what Detect found.
type Detection struct {
	Device   bool `json:"sev_guest_device"`
	Configfs bool `json:"configfs_tsm"`
}

// Found says whether any SNP interface exists.
func (d Detection) Found() bool { return d.Device || d.Configfs }

// Detect looks for /dev/sev-guest and configfs-tsm under root (configfs must
// be mounted at /sys/kernel/config; PID 1 setup does that).
func Detect(root string) Detection {
	exists := func(p string) bool { _, err := os.Stat(filepath.Join(root, p)); return err == nil }
	return Detection{Device: exists(DevicePath), Configfs: exists(ConfigfsTSM)}
}

// Report is one stored attestation.
type Report struct {
	Raw     []byte
	Binding Binding
}

// Request asks the device for a basic report at VMPL 0 with the binding's
// REPORT_DATA and checks the answer carries it.
func Request(d client.Device, b Binding) (*Report, error) {
	rd := b.ReportData()
	raw, err := client.GetRawReportAtVmpl(d, rd, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrReport, err)
	}
	if len(raw) < abi.ReportSize {
		return nil, fmt.Errorf("%w: %d-byte report", ErrReport, len(raw))
	}
	raw = raw[:abi.ReportSize]
	pb, err := abi.ReportToProto(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrReport, err)
	}
	if string(pb.GetReportData()) != string(rd[:]) {
		return nil, fmt.Errorf("%w: report does not carry the requested REPORT_DATA", ErrReport)
	}
	return &Report{Raw: raw, Binding: b}, nil
}

// OpenDevice opens /dev/sev-guest.
func OpenDevice() (client.Device, error) {
	d, err := client.OpenDevice()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoSNP, err)
	}
	return d, nil
}

// File names in the run directory.
const (
	ReportBinFile  = "snp-report.bin"
	ReportJSONFile = "snp-report.json"
	CertsFile      = "snp-certs.bin"
)

// Store writes the report as binary and as JSON (go-sev-guest's proto
// encoding) into runDir, and the certificate table when the host gave one.
// Files are 0644: a report is public evidence.
func Store(runDir string, r *Report, certs []byte) error {
	pb, err := abi.ReportToProto(r.Raw)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrReport, err)
	}
	js, err := protojson.MarshalOptions{Multiline: true}.Marshal(pb)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrReport, err)
	}
	files := map[string][]byte{ReportBinFile: r.Raw, ReportJSONFile: js}
	if len(certs) > 0 {
		files[CertsFile] = certs
	}
	for name, data := range files {
		if err := writeAtomic(filepath.Join(runDir, name), data); err != nil {
			return err
		}
	}
	return nil
}

func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
