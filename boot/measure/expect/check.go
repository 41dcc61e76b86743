package expect

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"inert/boot/measure"
	"inert/boot/measure/tcglog"
)

var (
	// ErrEvidence is an evidence document that does not parse.
	ErrEvidence = errors.New("malformed evidence")
	// ErrMismatch is a booted value that differs from the prediction, or a
	// log that does not replay to the live value.
	ErrMismatch = errors.New("measurement mismatch")
)

// Boot is what a booted appliance reports about its measurements: the
// fields `pcrs`, `event_log` and `firmware_log` of the demo service's
// evidence.json.
type Boot struct {
	PCRs measure.Values
	// Log is inert's event log.
	Log []measure.Record
	// Firmware is the firmware's TCG log; nil when the evidence has none.
	Firmware []tcglog.Event
}

// maxEvidence bounds an evidence document.
const maxEvidence = 32 << 20

// ParseEvidence reads the measurement fields of an evidence.json.
func ParseEvidence(b []byte) (Boot, error) {
	var boot Boot
	if len(b) > maxEvidence {
		return boot, fmt.Errorf("%w: %d bytes", ErrEvidence, len(b))
	}
	var ev struct {
		PCRs        map[string]map[string]string `json:"pcrs"`
		EventLog    []json.RawMessage            `json:"event_log"`
		FirmwareLog string                       `json:"firmware_log"`
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		return boot, fmt.Errorf("%w: %v", ErrEvidence, err)
	}
	boot.PCRs = measure.Values{}
	for bank, pcrs := range ev.PCRs {
		bk, err := measure.BankByName(bank)
		if err != nil {
			return boot, fmt.Errorf("%w: %w", ErrEvidence, err)
		}
		for idx, h := range pcrs {
			pcr, err := strconv.Atoi(idx)
			v, herr := hex.DecodeString(h)
			if err != nil || pcr < 0 || pcr > 23 || herr != nil || len(v) != bk.Hash.Size() {
				return boot, fmt.Errorf("%w: %s PCR %q value %q", ErrEvidence, bank, idx, h)
			}
			boot.PCRs.Set(bank, pcr, v)
		}
	}
	for i, raw := range ev.EventLog {
		var r measure.Record
		if err := json.Unmarshal(raw, &r); err != nil {
			return boot, fmt.Errorf("%w: event log record %d: %v", ErrEvidence, i, err)
		}
		if err := r.Validate(); err != nil {
			return boot, fmt.Errorf("%w: event log record %d: %w", ErrEvidence, i, err)
		}
		boot.Log = append(boot.Log, r)
	}
	if ev.FirmwareLog != "" {
		raw, err := hex.DecodeString(ev.FirmwareLog)
		if err != nil {
			return boot, fmt.Errorf("%w: firmware_log is not hex", ErrEvidence)
		}
		if boot.Firmware, err = tcglog.Parse(raw); err != nil {
			return boot, fmt.Errorf("%w: %w", ErrEvidence, err)
		}
	}
	return boot, nil
}

// PredictedPCRs are the PCRs `inert expect` predicts and Check compares.
var PredictedPCRs = []int{7, 9, measure.PCRPhases, measure.PCRConfig}

// Check compares a boot with a prediction, in every bank both have: PCRs
// 7, 9, 11 and 12 equal the prediction, PCR 15 is zero, every record of
// inert's log is self-describing and only touches PCR 11 or 12, and the
// logs replay to the live PCR 11 and 12 (inert's log on top of the
// firmware log's PCR 11, the stub's events). It returns a line per check
// that held, and every mismatch joined (each wraps ErrMismatch).
func Check(boot Boot, want *Result) ([]string, error) {
	var ok []string
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrMismatch}, args...)...))
	}
	var banks []string
	for _, b := range boot.PCRs.Banks() {
		if want.PCRs[b] != nil {
			banks = append(banks, b)
		}
	}
	if len(banks) == 0 {
		fail("the boot's banks %v and the prediction's share none", boot.PCRs.Banks())
	}
	for i, r := range boot.Log {
		if !measure.PCRAllowed(r.PCR) {
			fail("event log record %d extends PCR %d", i, r.PCR)
		}
		if !r.SelfDescribing() {
			fail("event log record %d (%q): digests are not the hashes of its string", i, r.Content.String)
		}
	}
	start := measure.Values{}
	if boot.Firmware != nil {
		fw := tcglog.Replay(boot.Firmware)
		for _, b := range banks {
			if v := fw.Get(b, measure.PCRPhases); v != nil {
				start.Set(b, measure.PCRPhases, v)
			}
		}
	}
	replayed, err := measure.Replay(boot.Log, start)
	if err != nil {
		fail("event log: %v", err)
	}
	for _, b := range banks {
		bank, _ := measure.BankByName(b)
		for _, pcr := range PredictedPCRs {
			live, predicted := boot.PCRs.Get(b, pcr), want.PCRs[b][strconv.Itoa(pcr)]
			if hex.EncodeToString(live) != predicted {
				fail("%s PCR %d is %x, predicted %s", b, pcr, live, predicted)
				continue
			}
			ok = append(ok, fmt.Sprintf("%s PCR %d equals the prediction", b, pcr))
		}
		if z := boot.PCRs.Get(b, measure.PCRService); !bytes.Equal(z, bank.Zero()) {
			fail("%s PCR 15 is %x, not zero", b, z)
		} else {
			ok = append(ok, fmt.Sprintf("%s PCR 15 is zero", b))
		}
		if boot.Firmware == nil || err != nil {
			continue
		}
		for _, pcr := range []int{measure.PCRPhases, measure.PCRConfig} {
			if got := replayed.Get(b, pcr); !bytes.Equal(got, boot.PCRs.Get(b, pcr)) {
				fail("%s PCR %d: the logs replay to %x, the TPM has %x", b, pcr, got, boot.PCRs.Get(b, pcr))
			} else {
				ok = append(ok, fmt.Sprintf("%s PCR %d replays from the logs", b, pcr))
			}
		}
	}
	if boot.Firmware == nil {
		fail("the evidence has no firmware log: PCR 11 cannot be replayed")
	}
	var strs []string
	for _, r := range boot.Log {
		if r.PCR == measure.PCRConfig {
			strs = append(strs, r.Content.String)
		}
	}
	if !slices.Equal(strs, want.PCR12Events) {
		fail("PCR 12 events %q, predicted %q", strs, want.PCR12Events)
	}
	return ok, errors.Join(errs...)
}
