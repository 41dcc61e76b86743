package tcglog

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// TestReplayMatchesTPM: logs OVMF wrote in real boots (Secure Boot off and
// on, swtpm with sha256 and sha384) replay to the values the TPM itself
// reported in the same boots.
func TestReplayMatchesTPM(t *testing.T) {
	for _, name := range []string{"ovmf-sb-off", "ovmf-sb-on"} {
		raw, err := os.ReadFile("testdata/" + name + ".log")
		if err != nil {
			t.Fatal(err)
		}
		var live map[string]map[string]string
		b, _ := os.ReadFile("testdata/" + name + ".pcrs.json")
		if err := json.Unmarshal(b, &live); err != nil {
			t.Fatal(err)
		}
		events, err := Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := Replay(events)
		for bank, pcrs := range live {
			for idx, want := range pcrs {
				var pcr int
				json.Unmarshal([]byte(idx), &pcr)
				v := got.Get(bank, pcr)
				if v == nil {
					v = make([]byte, len(want)/2) // never extended: zeros
				}
				if hex.EncodeToString(v) != want {
					t.Errorf("%s %s PCR %d: replay %x, TPM %s", name, bank, pcr, v, want)
				}
			}
		}
		// The Secure Boot variables decode with their names.
		var names []string
		for _, e := range OfPCR(events, 7) {
			if e.Type == EvEFIVariableDriverConfig {
				v, err := ParseVariableData(e.Data)
				if err != nil {
					t.Fatal(err)
				}
				names = append(names, v.Name)
				// OVMF hashes the whole UEFI_VARIABLE_DATA; re-encoding
				// the decoded form must give the same digest.
				if sum := sha256.Sum256(v.Encode()); !bytes.Equal(sum[:], e.Digests["sha256"]) {
					t.Errorf("%s: %s re-encodes to another digest", name, v.Name)
				}
			}
		}
		if got, want := stringsJoin(names), "SecureBoot PK KEK db dbx"; got != want {
			t.Errorf("%s PCR 7 variables %q, want %q", name, got, want)
		}
	}
}

func stringsJoin(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x)
	}
	return b.String()
}

// logWriter is a second, minimal encoder of the crypto-agile format, for
// synthetic logs.
type logWriter struct{ bytes.Buffer }

func (w *logWriter) u32(v uint32) { binary.Write(&w.Buffer, binary.LittleEndian, v) }
func (w *logWriter) u16(v uint16) { binary.Write(&w.Buffer, binary.LittleEndian, v) }

func (w *logWriter) header(algs map[uint16]uint16) {
	spec := append([]byte("Spec ID Event03\x00"), make([]byte, 8)...)
	spec = binary.LittleEndian.AppendUint32(spec, uint32(len(algs)))
	for _, alg := range []uint16{0x0b, 0x0c} {
		if size, ok := algs[alg]; ok {
			spec = binary.LittleEndian.AppendUint16(spec, alg)
			spec = binary.LittleEndian.AppendUint16(spec, size)
		}
	}
	spec = append(spec, 0)
	w.u32(0)
	w.u32(uint32(EvNoAction))
	w.Write(make([]byte, 20))
	w.u32(uint32(len(spec)))
	w.Write(spec)
}

func (w *logWriter) event(pcr uint32, typ EventType, data []byte) {
	w.u32(pcr)
	w.u32(uint32(typ))
	w.u32(2)
	s256, s384 := sha256.Sum256(data), sha512.Sum384(data)
	w.u16(0x0b)
	w.Write(s256[:])
	w.u16(0x0c)
	w.Write(s384[:])
	w.u32(uint32(len(data)))
	w.Write(data)
}

func synthetic() []byte {
	var w logWriter
	w.header(map[uint16]uint16{0x0b: 32, 0x0c: 48})
	w.event(7, EvSeparator, []byte{0, 0, 0, 0})
	w.event(9, EvEventTag, []byte("x"))
	w.event(7, EvNoAction, []byte("not extended"))
	return w.Bytes()
}

func TestSyntheticLog(t *testing.T) {
	events, err := Parse(synthetic())
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 4 || events[1].PCR != 7 || events[2].Type != EvEventTag || string(events[2].Data) != "x" {
		t.Fatalf("events %+v", events)
	}
	d := sha256.Sum256([]byte{0, 0, 0, 0})
	want := sha256.Sum256(append(make([]byte, 32), d[:]...))
	if got := Replay(events).Get("sha256", 7); !bytes.Equal(got, want[:]) {
		t.Errorf("PCR 7 %x, want %x (EV_NO_ACTION must not extend)", got, want)
	}
}

// TestParseFaults: one fault per case, each ErrFormat.
func TestParseFaults(t *testing.T) {
	good := synthetic()
	headerLen := 4 + 4 + 20 + 4 + 16 + 8 + 4 + 8 + 1
	cases := map[string][]byte{
		"empty":             nil,
		"truncated header":  good[:20],
		"truncated event":   good[:len(good)-3],
		"not agile":         append([]byte{0, 0, 0, 0, 3, 0, 0, 0}, make([]byte, 30)...),
		"digest count":      patch(good, headerLen+8, 9),
		"unannounced alg":   patch16(good, headerLen+12, 0x0d),
		"huge event size":   patch(good, len(good)-len("not extended")-4, 0xfffffff0),
		"PCR out of range":  patch(good, headerLen, 24),
		"zero algorithms":   patch(good, 4+4+20+4+24, 0),
		"wrong sha256 size": patch16(good, 4+4+20+4+28+2, 20),
	}
	for name, log := range cases {
		_, err := Parse(log)
		t.Logf("%s: %v", name, err)
		if !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v, want ErrFormat", name, err)
		}
	}
}

func patch(b []byte, at int, v uint32) []byte {
	out := bytes.Clone(b)
	binary.LittleEndian.PutUint32(out[at:], v)
	return out
}

func patch16(b []byte, at int, v uint16) []byte {
	out := bytes.Clone(b)
	binary.LittleEndian.PutUint16(out[at:], v)
	return out
}

func TestVariableDataEncoding(t *testing.T) {
	v := VariableData{VendorGUID: ImageSecurityDatabase, Name: "db", Data: []byte{1, 2, 3}}
	// By hand: GUID d719b2cb-3d3a-4596-a3bc-dad00e67656f in memory order,
	// name length 2, data length 3, "d\0b\0", data.
	want := []byte{0xcb, 0xb2, 0x19, 0xd7, 0x3a, 0x3d, 0x96, 0x45, 0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f,
		2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 'd', 0, 'b', 0, 1, 2, 3}
	if got := v.Encode(); !bytes.Equal(got, want) {
		t.Fatalf("encode %x, want %x", got, want)
	}
	back, err := ParseVariableData(want)
	if err != nil || back.Name != "db" || back.VendorGUID != v.VendorGUID || !bytes.Equal(back.Data, v.Data) {
		t.Fatalf("parse: %+v %v", back, err)
	}
	if ImageSecurityDatabase.String() != "d719b2cb-3d3a-4596-a3bc-dad00e67656f" {
		t.Errorf("GUID text %s", ImageSecurityDatabase)
	}
	for name, bad := range map[string][]byte{"short": want[:20], "name too long": patch(want, 16, 1000), "data too long": patch(want, 24, 1000)} {
		if _, err := ParseVariableData(bad); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := ParseGUID("nope"); !errors.Is(err, ErrFormat) {
		t.Errorf("bad GUID: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(synthetic())
	if b, err := os.ReadFile("testdata/ovmf-sb-on.log"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, log []byte) {
		events, err := Parse(log)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error without ErrFormat: %v", err)
			}
			return
		}
		for _, e := range events {
			_ = e.Describe()
		}
		_ = Replay(events)
	})
}

func FuzzParseVariableData(f *testing.F) {
	f.Add(VariableData{VendorGUID: GlobalVariable, Name: "PK", Data: []byte("x")}.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseVariableData(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error without ErrFormat: %v", err)
			}
			return
		}
		if _, err := ParseVariableData(v.Encode()); err != nil {
			t.Fatalf("re-encoded variable does not parse: %v", err)
		}
	})
}
