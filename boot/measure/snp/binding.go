package snp

import (
	"crypto/sha256"
	"crypto/sha512"
)

// BindingLabel starts the REPORT_DATA preimage; the version lets the binding
// change without ambiguity.
const BindingLabel = "inert-snp-binding-v1\x00"

// Binding is what an inert SNP report vouches for.
type Binding struct {
	// LogSHA256 is sha256 of the exact bytes of the userspace event log
	// (/run/log/systemd/tpm2-measure.log) when the report was requested; all
	// zeros when the machine has no TPM and so no log.
	LogSHA256 [32]byte
	// ConfigSHA256 is sha256 of the operator config.json bytes read from the
	// ESP; all zeros when there was none.
	ConfigSHA256 [32]byte
}

// NewBinding hashes the log and config bytes; nil means absent (zeros).
func NewBinding(logBytes, config []byte) Binding {
	var b Binding
	if logBytes != nil {
		b.LogSHA256 = sha256.Sum256(logBytes)
	}
	if config != nil {
		b.ConfigSHA256 = sha256.Sum256(config)
	}
	return b
}

// ReportData is SHA-512(BindingLabel || LogSHA256 || ConfigSHA256): the 64
// bytes placed in REPORT_DATA.
func (b Binding) ReportData() [64]byte {
	h := sha512.New()
	h.Write([]byte(BindingLabel))
	h.Write(b.LogSHA256[:])
	h.Write(b.ConfigSHA256[:])
	var out [64]byte
	copy(out[:], h.Sum(nil))
	return out
}
