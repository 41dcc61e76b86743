package snp

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/validate"
	"github.com/google/go-sev-guest/verify"
	"github.com/google/go-sev-guest/verify/trust"
)

// ErrVerify is a report that does not verify or does not match what was
// expected of it.
var ErrVerify = errors.New("SEV-SNP report rejected")

// VerifyOptions say what a report must prove.
type VerifyOptions struct {
	// Certs is the host's certificate table (snp-certs.bin), if stored.
	Certs []byte
	// Measurement (48 bytes) and ReportData (64 bytes) are checked when set.
	Measurement []byte
	ReportData  []byte
	// TrustedRoots replaces AMD's embedded ARK/ASK roots (tests).
	TrustedRoots map[string][]*trust.AMDRootCerts
	// Getter fetches a missing VCEK from AMD's KDS; nil means offline: the
	// VCEK must be in Certs.
	Getter trust.HTTPSGetter
	// Product forces the product (reports before v3 do not carry it).
	Product *spb.SevProduct
	// AllowDebug accepts a guest policy with debugging enabled.
	AllowDebug bool
	// Now is when certificates must be valid; zero means time.Now().
	Now time.Time
}

// Verify checks a raw report's signature chain to AMD's roots and the
// requested fields, and returns the parsed report.
func Verify(raw []byte, opts VerifyOptions) (*spb.Report, error) {
	if len(raw) != abi.ReportSize {
		return nil, fmt.Errorf("%w: report is %d bytes, want %d", ErrVerify, len(raw), abi.ReportSize)
	}
	att, err := abi.ReportCertsToProto(append(append([]byte(nil), raw...), opts.Certs...))
	if err != nil {
		return nil, fmt.Errorf("%w: parse: %v", ErrVerify, err)
	}
	vopts := &verify.Options{
		TrustedRoots:        opts.TrustedRoots,
		Getter:              opts.Getter,
		DisableCertFetching: opts.Getter == nil,
		Product:             opts.Product,
		Now:                 opts.Now,
	}
	if vopts.Now.IsZero() {
		vopts.Now = time.Now()
	}
	if len(att.GetCertificateChain().GetVcekCert()) == 0 && len(att.GetCertificateChain().GetVlekCert()) == 0 {
		if opts.Getter == nil {
			return nil, fmt.Errorf("%w: no VCEK in the certificate table and fetching is off", ErrVerify)
		}
		att, err = verify.GetAttestationFromReport(att.GetReport(), vopts)
		if err != nil {
			return nil, fmt.Errorf("%w: fetch VCEK: %v", ErrVerify, err)
		}
	}
	if err := verify.SnpAttestation(att, vopts); err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrVerify, err)
	}
	vals := &validate.Options{
		Measurement: opts.Measurement,
		ReportData:  opts.ReportData,
		// A debug guest's memory is readable by the host: refused unless
		// asked for. SMT is a host choice inert does not police.
		GuestPolicy:               abi.SnpPolicy{Debug: opts.AllowDebug, SMT: true},
		PermitProvisionalFirmware: true,
	}
	if err := validate.SnpAttestation(att, vals); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrVerify, err)
	}
	return att.GetReport(), nil
}
