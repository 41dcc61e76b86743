package tcglog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"inert/boot/measure"
)

// ErrFormat marks a firmware log that does not parse.
var ErrFormat = errors.New("malformed TCG event log")

// EventType is a TCG PC Client event type.
type EventType uint32

// The event types inert's checks name.
const (
	EvPostCode                   EventType = 0x00000001
	EvNoAction                   EventType = 0x00000003
	EvSeparator                  EventType = 0x00000004
	EvAction                     EventType = 0x00000005
	EvEventTag                   EventType = 0x00000006
	EvIPL                        EventType = 0x0000000D
	EvEFIVariableDriverConfig    EventType = 0x80000001
	EvEFIVariableBoot            EventType = 0x80000002
	EvEFIBootServicesApplication EventType = 0x80000003
	EvEFIAction                  EventType = 0x80000007
	EvEFIGPTEvent                EventType = 0x80000006
	EvEFIPlatformFirmwareBlob    EventType = 0x80000008
	EvEFIHandoffTables           EventType = 0x80000009
	EvEFIVariableAuthority       EventType = 0x800000E0
	EvEFIPlatformFirmwareBlob2   EventType = 0x8000000A
	EvEFIHandoffTables2          EventType = 0x8000000B
	EvEFIVariableBoot2           EventType = 0x8000000C
	EvEFIHCRTMEvent              EventType = 0x80000010
	EvEFISPDMFirmwareBlob        EventType = 0x800000E1
	EvEFISPDMFirmwareConfig      EventType = 0x800000E2
)

var typeNames = map[EventType]string{
	EvPostCode: "EV_POST_CODE", EvNoAction: "EV_NO_ACTION", EvSeparator: "EV_SEPARATOR",
	EvAction: "EV_ACTION", EvEventTag: "EV_EVENT_TAG", EvIPL: "EV_IPL",
	EvEFIVariableDriverConfig: "EV_EFI_VARIABLE_DRIVER_CONFIG", EvEFIVariableBoot: "EV_EFI_VARIABLE_BOOT",
	EvEFIBootServicesApplication: "EV_EFI_BOOT_SERVICES_APPLICATION", EvEFIAction: "EV_EFI_ACTION",
	EvEFIGPTEvent: "EV_EFI_GPT_EVENT", EvEFIPlatformFirmwareBlob: "EV_EFI_PLATFORM_FIRMWARE_BLOB",
	EvEFIHandoffTables: "EV_EFI_HANDOFF_TABLES", EvEFIVariableAuthority: "EV_EFI_VARIABLE_AUTHORITY",
	EvEFIPlatformFirmwareBlob2: "EV_EFI_PLATFORM_FIRMWARE_BLOB2", EvEFIHandoffTables2: "EV_EFI_HANDOFF_TABLES2",
	EvEFIVariableBoot2: "EV_EFI_VARIABLE_BOOT2", EvEFIHCRTMEvent: "EV_EFI_HCRTM_EVENT",
	EvEFISPDMFirmwareBlob: "EV_EFI_SPDM_FIRMWARE_BLOB", EvEFISPDMFirmwareConfig: "EV_EFI_SPDM_FIRMWARE_CONFIG",
}

func (t EventType) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("EV_0x%08x", uint32(t))
}

// Event is one TCG_PCR_EVENT2 of the log.
type Event struct {
	// Index is the event's position in the log (the header event is 0).
	Index int
	PCR   int
	Type  EventType
	// Digests are per bank name ("sha256"); banks inert does not know are
	// left out.
	Digests map[string][]byte
	Data    []byte
}

// specIDSignature starts the header event of a crypto-agile log.
var specIDSignature = []byte("Spec ID Event03\x00")

// Limits keep a hostile log from costing more than a real one could.
const (
	maxEvents    = 1 << 14
	maxEventData = 1 << 20
	maxPCR       = 23
)

// Parse decodes a crypto-agile log: the SHA-1-format header event carrying
// the Spec ID (which announces every algorithm's digest size), then
// TCG_PCR_EVENT2 records. The header is returned as event 0.
func Parse(log []byte) ([]Event, error) {
	r := &reader{b: log}
	hdr := Event{Index: 0}
	hdr.PCR = int(r.u32())
	hdr.Type = EventType(r.u32())
	r.bytes(20) // the header's SHA-1 digest field is zeros by definition
	hdr.Data = r.sized(maxEventData)
	if r.err != nil {
		return nil, fmt.Errorf("%w: header event: %v", ErrFormat, r.err)
	}
	if hdr.Type != EvNoAction || !bytes.HasPrefix(hdr.Data, specIDSignature) {
		return nil, fmt.Errorf("%w: not a crypto-agile log (no Spec ID Event03 header)", ErrFormat)
	}
	sizes, err := digestSizes(hdr.Data)
	if err != nil {
		return nil, err
	}
	out := []Event{hdr}
	for i := 1; r.len() > 0; i++ {
		if i > maxEvents {
			return nil, fmt.Errorf("%w: more than %d events", ErrFormat, maxEvents)
		}
		e := Event{Index: i, Digests: map[string][]byte{}}
		e.PCR = int(r.u32())
		e.Type = EventType(r.u32())
		n := r.u32()
		if r.err == nil && n > uint32(len(sizes)) {
			return nil, fmt.Errorf("%w: event %d has %d digests, the header announced %d algorithms", ErrFormat, i, n, len(sizes))
		}
		for j := uint32(0); j < n && r.err == nil; j++ {
			alg := r.u16()
			size, ok := sizes[alg]
			if !ok && r.err == nil {
				return nil, fmt.Errorf("%w: event %d uses algorithm 0x%04x the header did not announce", ErrFormat, i, alg)
			}
			d := r.bytes(int(size))
			if b, err := measure.BankByAlg(tpm2.TPMAlgID(alg)); err == nil && d != nil {
				e.Digests[b.Name] = d
			}
		}
		e.Data = r.sized(maxEventData)
		if r.err != nil {
			return nil, fmt.Errorf("%w: event %d: %v", ErrFormat, i, r.err)
		}
		if e.PCR > maxPCR {
			return nil, fmt.Errorf("%w: event %d extends PCR %d", ErrFormat, i, e.PCR)
		}
		out = append(out, e)
	}
	return out, nil
}

// digestSizes reads TCG_EfiSpecIDEvent: signature[16], platformClass u32,
// version minor/major/errata u8, uintnSize u8, numberOfAlgorithms u32, then
// {algorithmId u16, digestSize u16} per algorithm.
func digestSizes(spec []byte) (map[uint16]uint16, error) {
	r := &reader{b: spec}
	r.bytes(16 + 4 + 4)
	n := r.u32()
	if r.err == nil && (n == 0 || n > 16) {
		return nil, fmt.Errorf("%w: Spec ID announces %d algorithms", ErrFormat, n)
	}
	sizes := map[uint16]uint16{}
	for i := uint32(0); i < n && r.err == nil; i++ {
		alg, size := r.u16(), r.u16()
		if size == 0 || size > 64 {
			return nil, fmt.Errorf("%w: algorithm 0x%04x has digest size %d", ErrFormat, alg, size)
		}
		if b, err := measure.BankByAlg(tpm2.TPMAlgID(alg)); err == nil && int(size) != b.Hash.Size() {
			return nil, fmt.Errorf("%w: %s announced with digest size %d", ErrFormat, b.Name, size)
		}
		sizes[alg] = size
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: Spec ID event: %v", ErrFormat, r.err)
	}
	return sizes, nil
}

// reader is a little-endian cursor that remembers its first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) len() int { return len(r.b) }

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("need %d bytes, %d left", n, len(r.b))
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u16() uint16 {
	b := r.bytes(2)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *reader) u32() uint32 {
	b := r.bytes(4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

// sized reads a u32 length and that many bytes, at most limit.
func (r *reader) sized(limit int) []byte {
	n := r.u32()
	if r.err == nil && int64(n) > int64(limit) {
		r.err = fmt.Errorf("event data of %d bytes", n)
		return nil
	}
	return r.bytes(int(n))
}
