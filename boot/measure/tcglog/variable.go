package tcglog

import (
	"encoding/binary"
	"fmt"
	"unicode/utf16"
)

// GUID is an EFI GUID in its in-memory (mixed-endian) byte order.
type GUID [16]byte

// String renders the GUID in the usual text form.
func (g GUID) String() string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(g[0:4]),
		binary.LittleEndian.Uint16(g[4:6]), binary.LittleEndian.Uint16(g[6:8]), g[8:10], g[10:16])
}

// ParseGUID reads the text form ("8be4df61-93ca-11d2-aa0d-00e098032b8c").
func ParseGUID(s string) (GUID, error) {
	var g GUID
	var a uint32
	var b, c uint16
	var d [8]byte
	n, err := fmt.Sscanf(s, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		&a, &b, &c, &d[0], &d[1], &d[2], &d[3], &d[4], &d[5], &d[6], &d[7])
	if err != nil || n != 11 || len(s) != 36 {
		return g, fmt.Errorf("%w: GUID %q", ErrFormat, s)
	}
	binary.LittleEndian.PutUint32(g[0:4], a)
	binary.LittleEndian.PutUint16(g[4:6], b)
	binary.LittleEndian.PutUint16(g[6:8], c)
	copy(g[8:], d[:])
	return g, nil
}

// Well-known variable namespaces.
var (
	// GlobalVariable holds SecureBoot, PK and KEK.
	GlobalVariable = mustGUID("8be4df61-93ca-11d2-aa0d-00e098032b8c")
	// ImageSecurityDatabase holds db and dbx.
	ImageSecurityDatabase = mustGUID("d719b2cb-3d3a-4596-a3bc-dad00e67656f")
)

func mustGUID(s string) GUID {
	g, err := ParseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

// VariableData is UEFI_VARIABLE_DATA, the event data of the
// EV_EFI_VARIABLE_* events.
type VariableData struct {
	VendorGUID GUID
	Name       string
	Data       []byte
}

// Encode renders UEFI_VARIABLE_DATA: VariableName GUID, UnicodeNameLength
// (characters, u64), VariableDataLength (u64), the name in UTF-16LE without
// NUL, then the data.
func (v VariableData) Encode() []byte {
	name := utf16.Encode([]rune(v.Name))
	out := make([]byte, 0, 32+2*len(name)+len(v.Data))
	out = append(out, v.VendorGUID[:]...)
	out = binary.LittleEndian.AppendUint64(out, uint64(len(name)))
	out = binary.LittleEndian.AppendUint64(out, uint64(len(v.Data)))
	for _, c := range name {
		out = binary.LittleEndian.AppendUint16(out, c)
	}
	return append(out, v.Data...)
}

// ParseVariableData decodes UEFI_VARIABLE_DATA.
func ParseVariableData(b []byte) (VariableData, error) {
	var v VariableData
	r := &reader{b: b}
	copy(v.VendorGUID[:], r.bytes(16))
	nameLen, dataLen := r.u64(), r.u64()
	if r.err == nil && (nameLen > uint64(len(r.b))/2 || dataLen > uint64(len(r.b))) {
		return v, fmt.Errorf("%w: variable data lengths %d/%d exceed the event", ErrFormat, nameLen, dataLen)
	}
	raw := r.bytes(int(nameLen) * 2)
	v.Data = r.bytes(int(dataLen))
	if r.err != nil {
		return v, fmt.Errorf("%w: variable data: %v", ErrFormat, r.err)
	}
	name := make([]uint16, nameLen)
	for i := range name {
		name[i] = binary.LittleEndian.Uint16(raw[2*i:])
	}
	v.Name = string(utf16.Decode(name))
	return v, nil
}

// TaggedEvent is TCG_PCClientTaggedEvent (EV_EVENT_TAG's data): Linux's EFI
// stub uses it for the initrd and the load options it measures into PCR 9.
type TaggedEvent struct {
	ID   uint32
	Data []byte
}

// ParseTaggedEvent decodes taggedEventID u32, taggedEventDataSize u32, data.
func ParseTaggedEvent(b []byte) (TaggedEvent, error) {
	r := &reader{b: b}
	t := TaggedEvent{ID: r.u32()}
	t.Data = r.sized(len(b))
	if r.err != nil {
		return t, fmt.Errorf("%w: tagged event: %v", ErrFormat, r.err)
	}
	return t, nil
}

func (r *reader) u64() uint64 {
	b := r.bytes(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}
