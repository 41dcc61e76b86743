package measure

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

// DevicePath is the kernel resource-managed TPM device inert opens.
const DevicePath = "/dev/tpmrm0"

// Measurer extends PCRs in every active bank of a TPM and writes one log
// record per extend. It is safe for concurrent use.
type Measurer struct {
	mu     sync.Mutex
	tpm    transport.TPM
	closer io.Closer
	log    *Log
	policy RetryPolicy
	banks  []Bank
	// allocated[bank][pcr] says whether the bank has that PCR.
	allocated map[string][]byte
	// shadow is the last known value of each allowed PCR, to tell after a
	// transport timeout whether an extend reached the TPM.
	shadow Values
	// extends and spent count this Measurer's extends and the time they
	// took (TPM and log together): the boot's measuring cost.
	extends int
	spent   time.Duration
}

// Open opens the TPM device at path (DevicePath in production) and prepares
// a Measurer writing to log.
func Open(path string, log *Log) (*Measurer, error) {
	t, err := linuxtpm.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %v", ErrTPM, path, err)
	}
	m, err := New(t, log, DefaultRetry)
	if err != nil {
		t.Close()
		return nil, err
	}
	m.closer = t
	return m, nil
}

// New prepares a Measurer on an open TPM transport: it reads the active PCR
// banks and the current values of the allowed PCRs. Busy answers are retried
// per policy.
func New(t transport.TPM, log *Log, policy RetryPolicy) (*Measurer, error) {
	if log == nil {
		return nil, fmt.Errorf("%w: a measurer needs an event log", ErrLog)
	}
	m := &Measurer{tpm: retryingTPM{inner: t, policy: policy}, log: log, policy: policy}
	if err := m.readBanks(); err != nil {
		return nil, err
	}
	shadow, err := m.ReadPCRs(AllowedPCRs...)
	if err != nil {
		return nil, err
	}
	m.shadow = shadow
	return m, nil
}

// Close closes the TPM when Open opened it. The log is the caller's.
func (m *Measurer) Close() error {
	if m.closer == nil {
		return nil
	}
	return m.closer.Close()
}

// Banks are the active banks, in the TPM's order.
func (m *Measurer) Banks() []Bank { return append([]Bank(nil), m.banks...) }

func (m *Measurer) readBanks() error {
	rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapPCRs, PropertyCount: 1}.Execute(m.tpm)
	if err != nil {
		return fmt.Errorf("%w: read PCR banks: %w", ErrTPM, err)
	}
	sel, err := rsp.CapabilityData.Data.AssignedPCR()
	if err != nil {
		return fmt.Errorf("%w: read PCR banks: %w", ErrTPM, err)
	}
	m.allocated = map[string][]byte{}
	for _, s := range sel.PCRSelections {
		if !anyBit(s.PCRSelect) {
			continue // allocated but inactive bank
		}
		b, err := BankByAlg(s.Hash)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrTPM, err)
		}
		m.banks = append(m.banks, b)
		m.allocated[b.Name] = bytes.Clone(s.PCRSelect)
	}
	if len(m.banks) == 0 {
		return fmt.Errorf("%w: no active PCR bank", ErrTPM)
	}
	return nil
}

func anyBit(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return true
		}
	}
	return false
}

func (m *Measurer) has(bank string, pcr int) bool {
	sel := m.allocated[bank]
	return pcr/8 < len(sel) && sel[pcr/8]&(1<<(pcr%8)) != 0
}

// Extend measures data into pcr: each active bank gets its own hash of data
// in one TPM2_PCR_Extend, and the log gets one record carrying every digest,
// description as content.string and eventType. Only AllowedPCRs are accepted.
// Any TPM failure is ErrTPM.
func (m *Measurer) Extend(pcr int, eventType, description string, data []byte) error {
	if !PCRAllowed(pcr) {
		return fmt.Errorf("%w: PCR %d (%s)", ErrForbiddenPCR, pcr, description)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var values tpm2.TPMLDigestValues
	rec := Record{PCR: pcr, ContentType: ContentTypeSystemd, Content: Content{String: description, EventType: eventType}}
	for _, b := range m.banks {
		if !m.has(b.Name, pcr) {
			continue
		}
		d := b.Digest(data)
		values.Digests = append(values.Digests, tpm2.TPMTHA{HashAlg: b.Alg, Digest: d})
		rec.Digests = append(rec.Digests, RecordDigest{HashAlg: b.Name, Digest: hex.EncodeToString(d)})
	}
	if len(values.Digests) == 0 {
		return fmt.Errorf("%w: PCR %d is in no active bank", ErrTPM, pcr)
	}
	start := time.Now()
	err := m.log.Measure(rec, func() error { return m.extend(pcr, values) })
	m.extends++
	m.spent += time.Since(start)
	return err
}

// Spent reports how many extends were made and the time they took, TPM
// commands and log writes together.
func (m *Measurer) Spent() (extends int, spent time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.extends, m.spent
}

// extend runs PCR_Extend. A transport timeout leaves it unknown whether the
// TPM executed the command; the PCR itself tells: unchanged means resend,
// advanced by exactly this digest means done, anything else is a failure.
func (m *Measurer) extend(pcr int, values tpm2.TPMLDigestValues) error {
	want := m.shadow.Clone()
	for _, d := range values.Digests {
		b, _ := BankByAlg(d.HashAlg)
		want.Set(b.Name, pcr, b.ExtendValue(m.shadow.Get(b.Name, pcr), d.Digest))
	}
	cmd := tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests:   values,
	}
	for try := 1; ; try++ {
		_, err := cmd.Execute(m.tpm)
		if err == nil {
			m.shadow = want
			return nil
		}
		if !isTimeout(err) {
			return fmt.Errorf("%w: extend PCR %d: %w", ErrTPM, pcr, err)
		}
		now, rerr := m.ReadPCRs(pcr)
		if rerr != nil {
			return fmt.Errorf("%w: extend PCR %d timed out (%v) and the PCR cannot be read: %w", ErrTPM, pcr, err, rerr)
		}
		switch {
		case m.samePCR(now, want, pcr):
			m.shadow = want
			return nil
		case !m.samePCR(now, m.shadow, pcr) || try >= m.policy.attempts():
			return fmt.Errorf("%w: extend PCR %d timed out and the PCR holds neither the old nor the new value: %v", ErrTPM, pcr, err)
		}
		m.policy.wait(try)
	}
}

func (m *Measurer) samePCR(a, b Values, pcr int) bool {
	for _, bank := range m.banks {
		if m.has(bank.Name, pcr) && !bytes.Equal(a.Get(bank.Name, pcr), b.Get(bank.Name, pcr)) {
			return false
		}
	}
	return true
}

// ReadPCRs reads the given PCRs in every active bank that has them.
func (m *Measurer) ReadPCRs(pcrs ...int) (Values, error) {
	out := Values{}
	for _, b := range m.banks {
		for _, pcr := range pcrs {
			if pcr < 0 || pcr > 23 {
				return nil, fmt.Errorf("%w: read PCR %d: out of range", ErrTPM, pcr)
			}
			if !m.has(b.Name, pcr) {
				continue
			}
			v, err := m.readOne(b, pcr)
			if err != nil {
				return nil, err
			}
			out.Set(b.Name, pcr, v)
		}
	}
	return out, nil
}

func (m *Measurer) readOne(b Bank, pcr int) ([]byte, error) {
	sel := tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
		Hash: b.Alg, PCRSelect: tpm2.PCClientCompatible.PCRs(uint(pcr)),
	}}}
	rsp, err := tpm2.PCRRead{PCRSelectionIn: sel}.Execute(m.tpm)
	if err != nil {
		return nil, fmt.Errorf("%w: read %s PCR %d: %w", ErrTPM, b.Name, pcr, err)
	}
	if len(rsp.PCRValues.Digests) != 1 || len(rsp.PCRValues.Digests[0].Buffer) != b.Hash.Size() {
		return nil, fmt.Errorf("%w: read %s PCR %d: TPM returned %d values", ErrTPM, b.Name, pcr, len(rsp.PCRValues.Digests))
	}
	return rsp.PCRValues.Digests[0].Buffer, nil
}
