package storage

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/client"

	"inert/storage/luks2"
)

// The snp key source asks the AMD secure processor for a key derived from
// the chip's VCEK with the guest's launch measurement, policy, SVN and TCB
// version mixed in (MSG_KEY_REQ through /dev/sev-guest; configfs-tsm has
// no key derivation). Only the same image, launched with the same policy on
// the same chip at a TCB at least as new, gets the same key back. The
// parameters of the derivation are recorded in a LUKS2 token so every boot
// repeats exactly that request:
//
//	{"type":"inert-snp", "keyslots":["0"], "snp-root-key":"vcek",
//	 "snp-guest-fields":["guest-policy","guest-svn","measurement","tcb-version"],
//	 "snp-vmpl":"0", "snp-guest-svn":"0", "snp-tcb-version":"<16 hex>",
//	 "snp-measurement":"<96 hex>", "snp-policy":"<16 hex>", "snp-salt":"<base64 32 bytes>"}
//
// The measurement and policy in the token are what the derivation mixed in
// at enrolment, recorded so a changed launch is named before the key is
// asked for; the secure processor mixes in the live values itself, so the
// token cannot steer the key. The keyslot passphrase is
// base64(HMAC-SHA256(derived key, "inert-snp-zone-v1" 0x00 salt)): the salt
// gives every volume of one guest its own passphrase.
//
// Unlike the tpm source there is nothing to lock after the unlock: the
// service keeps /dev/sev-guest (CONTRACTS §2) and could repeat the request
// with the token's public inputs. That gives it no more than it already
// has, the mounted volume, but the key is not confined to the boot as a
// PCR-11-sealed one is.
const (
	SNPTokenType = "inert-snp"
	snpRootVCEK  = "vcek"
	snpPassLabel = "inert-snp-zone-v1"
	snpSaltLen   = 32
)

// The guest fields inert mixes in, by their token names. Measurement and
// policy are required in any token: without them another image on the
// same chip could derive the key.
const (
	SNPFieldMeasurement = "measurement"
	SNPFieldPolicy      = "guest-policy"
	SNPFieldGuestSVN    = "guest-svn"
	SNPFieldTCBVersion  = "tcb-version"
)

// snpEnrolFields is what Enroll mixes in (sorted, as the token lists them).
var snpEnrolFields = []string{SNPFieldPolicy, SNPFieldGuestSVN, SNPFieldMeasurement, SNPFieldTCBVersion}

// snpFactsReportData is the REPORT_DATA of the report Enroll and
// Passphrase read the launch facts from; the report is not kept.
var snpFactsReportData = sha512.Sum512([]byte("inert-snp-zone-key-facts-v1"))

var (
	// ErrSNPMismatch: the guest's launch measurement or policy differs
	// from enrolment (another image or policy); the key would differ.
	ErrSNPMismatch = errors.New("SEV-SNP launch differs from enrolment")
	// ErrSNPToken: the volume carries no usable inert-snp token.
	ErrSNPToken = errors.New("inert-snp token unusable")
	// ErrSNPUnavailable: /dev/sev-guest could not be opened or refused.
	ErrSNPUnavailable = errors.New("SEV-SNP guest device unavailable")
)

// SNPOpener opens the SEV guest device (/dev/sev-guest in production,
// go-sev-guest's fake in tests).
type SNPOpener func() (client.Device, error)

// DeviceSNP opens the Linux sev-guest device at path.
func DeviceSNP(path string) SNPOpener {
	return func() (client.Device, error) {
		d := &client.LinuxDevice{}
		if err := d.Open(path); err != nil {
			return nil, err
		}
		return d, nil
	}
}

// SNPKey is the "snp" zone key source.
type SNPKey struct {
	Open SNPOpener
	// Rand supplies the salt; crypto/rand when nil.
	Rand io.Reader
}

// Name implements KeySource.
func (SNPKey) Name() string { return "snp" }

// SNPToken is the inert-snp token. Numbers are decimal strings, as LUKS2
// writes its own 64-bit values.
type SNPToken struct {
	Type        string   `json:"type"`
	Keyslots    []string `json:"keyslots"`
	RootKey     string   `json:"snp-root-key"`
	Fields      []string `json:"snp-guest-fields"`
	VMPL        string   `json:"snp-vmpl"`
	GuestSVN    string   `json:"snp-guest-svn"`
	TCBVersion  string   `json:"snp-tcb-version"`
	Measurement string   `json:"snp-measurement"`
	Policy      string   `json:"snp-policy"`
	Salt        string   `json:"snp-salt"`
}

// snpDerivation is a checked token: the request and what it expects.
type snpDerivation struct {
	req         client.SnpDerivedKeyReq
	measurement []byte
	policy      uint64
	salt        []byte
}

// snpFacts is what a report says about this launch.
type snpFacts struct {
	measurement []byte
	policy      uint64
	guestSVN    uint32
	vmpl        uint32
	tcb         uint64
}

// Enroll implements KeySource: derive a key for this launch and record how.
func (k SNPKey) Enroll(ctx context.Context) (Enrollment, error) {
	d, err := k.open()
	if err != nil {
		return Enrollment{}, err
	}
	defer d.Close()
	f, err := launchFacts(d)
	if err != nil {
		return Enrollment{}, err
	}
	rnd := k.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	salt := make([]byte, snpSaltLen)
	if _, err := io.ReadFull(rnd, salt); err != nil {
		return Enrollment{}, fmt.Errorf("snp salt: %w", err)
	}
	der := snpDerivation{
		req: client.SnpDerivedKeyReq{
			UseVCEK:          true,
			GuestFieldSelect: client.GuestFieldSelect{Measurement: true, GuestPolicy: true, GuestSVN: true, TCBVersion: true},
			Vmpl:             f.vmpl, GuestSVN: f.guestSVN, TCBVersion: f.tcb,
		},
		measurement: f.measurement, policy: f.policy, salt: salt,
	}
	pass, err := der.passphrase(d)
	if err != nil {
		return Enrollment{}, err
	}
	tok, err := json.Marshal(SNPToken{
		Type: SNPTokenType, Keyslots: []string{"0"}, RootKey: snpRootVCEK, Fields: slices.Clone(snpEnrolFields),
		VMPL: strconv.FormatUint(uint64(f.vmpl), 10), GuestSVN: strconv.FormatUint(uint64(f.guestSVN), 10),
		TCBVersion: fmt.Sprintf("%016x", f.tcb), Measurement: hex.EncodeToString(f.measurement),
		Policy: fmt.Sprintf("%016x", f.policy), Salt: base64.StdEncoding.EncodeToString(salt),
	})
	if err != nil {
		clear(pass)
		return Enrollment{}, err
	}
	return Enrollment{Passphrase: pass, KDF: luks2.PBKDF2Params(), Tokens: []json.RawMessage{tok}}, nil
}

// Passphrase implements KeySource: repeat the token's derivation. A launch
// whose measurement or policy differs from the token's is ErrSNPMismatch,
// decided before the secure processor is asked.
func (k SNPKey) Passphrase(ctx context.Context, meta *luks2.Metadata) ([]byte, error) {
	toks := meta.TokensOfType(SNPTokenType)
	if len(toks) != 1 {
		return nil, fmt.Errorf("%w: %d inert-snp tokens, want 1", ErrSNPToken, len(toks))
	}
	der, err := parseSNPToken(toks[0].Raw)
	if err != nil {
		return nil, err
	}
	d, err := k.open()
	if err != nil {
		return nil, err
	}
	defer d.Close()
	f, err := launchFacts(d)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(f.measurement, der.measurement) {
		return nil, fmt.Errorf("%w: launch measurement %x, enrolled %x", ErrSNPMismatch, f.measurement, der.measurement)
	}
	if f.policy != der.policy {
		return nil, fmt.Errorf("%w: guest policy %#x, enrolled %#x", ErrSNPMismatch, f.policy, der.policy)
	}
	return der.passphrase(d)
}

// passphrase asks for the derived key and turns it into this volume's
// keyslot passphrase.
func (der snpDerivation) passphrase(d client.Device) ([]byte, error) {
	rsp, err := client.GetDerivedKeyAcknowledgingItsLimitations(d, &der.req)
	if err != nil {
		return nil, fmt.Errorf("%w: derive key: %v", ErrSNPUnavailable, err)
	}
	key := rsp.Data[:]
	defer lockKey(key)()
	if allZero(key) {
		return nil, fmt.Errorf("%w: the secure processor returned an all-zero key", ErrSNPUnavailable)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(snpPassLabel))
	mac.Write([]byte{0})
	mac.Write(der.salt)
	sum := mac.Sum(nil)
	defer clear(sum)
	return passphraseOf(sum), nil
}

func allZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc == 0
}

func (k SNPKey) open() (client.Device, error) {
	if k.Open == nil {
		return nil, fmt.Errorf("%w: no SEV guest device configured", ErrSNPUnavailable)
	}
	d, err := k.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSNPUnavailable, err)
	}
	return d, nil
}

// launchFacts reads a report at VMPL 0 (the basic SNP_GET_REPORT the
// contract allows) and returns the launch's measurement, policy, SVN, VMPL
// and reported TCB.
func launchFacts(d client.Device) (snpFacts, error) {
	raw, err := client.GetRawReportAtVmpl(d, snpFactsReportData, 0)
	if err != nil {
		return snpFacts{}, fmt.Errorf("%w: report: %v", ErrSNPUnavailable, err)
	}
	pb, err := abi.ReportToProto(raw)
	if err != nil {
		return snpFacts{}, fmt.Errorf("%w: report: %v", ErrSNPUnavailable, err)
	}
	if !hmac.Equal(pb.GetReportData(), snpFactsReportData[:]) {
		return snpFacts{}, fmt.Errorf("%w: the report does not carry the requested REPORT_DATA", ErrSNPUnavailable)
	}
	if len(pb.GetMeasurement()) != abi.MeasurementSize {
		return snpFacts{}, fmt.Errorf("%w: report measurement of %d bytes", ErrSNPUnavailable, len(pb.GetMeasurement()))
	}
	return snpFacts{
		measurement: pb.GetMeasurement(), policy: pb.GetPolicy(), guestSVN: pb.GetGuestSvn(),
		vmpl: pb.GetVmpl(), tcb: pb.GetReportedTcb(),
	}, nil
}

// parseSNPToken decodes and checks one inert-snp token from a volume
// header (outside input): VCEK root, measurement and policy mixed in, only
// known fields, each once, VMPL 0-3, and well-formed values.
func parseSNPToken(raw json.RawMessage) (snpDerivation, error) {
	var t SNPToken
	bad := func(format string, a ...any) (snpDerivation, error) {
		return snpDerivation{}, fmt.Errorf("%w: "+format, append([]any{ErrSNPToken}, a...)...)
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return bad("%v", err)
	}
	switch {
	case t.Type != SNPTokenType:
		return bad("type %q", t.Type)
	case len(t.Keyslots) != 1:
		return bad("names %d keyslots, want 1", len(t.Keyslots))
	case t.RootKey != snpRootVCEK:
		return bad("root key %q, want %s (the VMRK is the host's choice)", t.RootKey, snpRootVCEK)
	}
	var sel client.GuestFieldSelect
	seen := map[string]bool{}
	for _, f := range t.Fields {
		if seen[f] {
			return bad("field %q twice", f)
		}
		seen[f] = true
		switch f {
		case SNPFieldMeasurement:
			sel.Measurement = true
		case SNPFieldPolicy:
			sel.GuestPolicy = true
		case SNPFieldGuestSVN:
			sel.GuestSVN = true
		case SNPFieldTCBVersion:
			sel.TCBVersion = true
		default:
			return bad("unknown guest field %q", f)
		}
	}
	if !sel.Measurement || !sel.GuestPolicy {
		return bad("the derivation must mix in the measurement and the policy")
	}
	vmpl, err := strconv.ParseUint(t.VMPL, 10, 32)
	if err != nil || vmpl > 3 {
		return bad("vmpl %q", t.VMPL)
	}
	svn, err := strconv.ParseUint(t.GuestSVN, 10, 32)
	if err != nil {
		return bad("guest svn %q", t.GuestSVN)
	}
	tcb, err := parseHex64(t.TCBVersion)
	if err != nil {
		return bad("tcb version %q", t.TCBVersion)
	}
	policy, err := parseHex64(t.Policy)
	if err != nil {
		return bad("policy %q", t.Policy)
	}
	meas, err := hex.DecodeString(t.Measurement)
	if err != nil || len(meas) != abi.MeasurementSize {
		return bad("measurement is not %d bytes of hex", abi.MeasurementSize)
	}
	salt, err := base64.StdEncoding.DecodeString(t.Salt)
	if err != nil || len(salt) != snpSaltLen {
		return bad("salt is not %d bytes of base64", snpSaltLen)
	}
	return snpDerivation{
		req: client.SnpDerivedKeyReq{
			UseVCEK: true, GuestFieldSelect: sel,
			Vmpl: uint32(vmpl), GuestSVN: uint32(svn), TCBVersion: tcb,
		},
		measurement: meas, policy: policy, salt: salt,
	}, nil
}

// parseHex64 reads exactly 16 lower-case hex digits.
func parseHex64(s string) (uint64, error) {
	if len(s) != 16 {
		return 0, errors.New("want 16 hex digits")
	}
	b, err := hex.DecodeString(s)
	if err != nil || hex.EncodeToString(b) != s {
		return 0, errors.New("want lower-case hex")
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, nil
}
