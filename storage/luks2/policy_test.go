package luks2

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// validVolume writes a two-keyslot PBKDF2 volume and returns it.
func validVolume(t testing.TB) (*memDevice, []byte) {
	t.Helper()
	pass := []byte("pass")
	l, err := Build(make([]byte, 64), testDeviceSize, FormatOptions{
		Label: "lapee-nonvolatile",
		Keyslots: []KeyslotSpec{
			{Passphrase: pass, KDF: PBKDF2Params()},
			{Passphrase: []byte("other"), KDF: PBKDF2Params()},
		},
		Fresh: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	dev := newMemDevice(testDeviceSize)
	if err := l.Write(dev); err != nil {
		t.Fatal(err)
	}
	return dev, pass
}

// forge re-encodes both header copies from edited metadata (as an attacker
// with write access to the disk could), with consistent checksums.
func forge(t testing.TB, dev *memDevice, hdrSize uint64, edit func(m *Metadata, bin *BinHeader)) {
	t.Helper()
	s, err := ReadSnapshot(dev, dev.size)
	if err != nil {
		t.Fatal(err)
	}
	var m Metadata
	if err := json.Unmarshal(s.JSON, &m); err != nil {
		t.Fatal(err)
	}
	bin := s.Header
	bin.HeaderSize = hdrSize
	edit(&m, &bin)
	primary, backup, err := encodeHeaders(bin, &m, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dev.WriteAt(backup, int64(bin.HeaderSize))
	dev.WriteAt(primary, 0)
}

func TestPolicyRejects(t *testing.T) {
	for _, tc := range []struct {
		name    string
		hdrSize uint64
		edit    func(m *Metadata, bin *BinHeader)
		size    uint64 // device size given to Check; 0 = real
		want    error
	}{
		{"cipher_null segment", 0, func(m *Metadata, _ *BinHeader) { m.Segments["0"].Encryption = "cipher_null-ecb" }, 0, ErrCipher},
		{"cbc segment", 0, func(m *Metadata, _ *BinHeader) { m.Segments["0"].Encryption = "aes-cbc-essiv:sha256" }, 0, ErrCipher},
		{"cipher_null keyslot", 0, func(m *Metadata, _ *BinHeader) { m.Keyslots["1"].Area.Encryption = "cipher_null-ecb" }, 0, ErrCipher},
		{"16-byte volume key", 0, func(m *Metadata, _ *BinHeader) {
			for _, ks := range m.Keyslots {
				ks.KeySize = 16
			}
		}, 0, ErrKeySize},
		{"mixed key sizes", 0, func(m *Metadata, _ *BinHeader) { m.Keyslots["1"].KeySize = 32 }, 0, ErrKeySize},
		{"keyslot area past keyslots area", 0, func(m *Metadata, _ *BinHeader) {
			m.Keyslots["1"].Area.Offset = U64(2*DefaultHeaderSize) + m.Config.KeyslotsSize
		}, 0, ErrAreaOutside},
		{"keyslot area over the headers", 0, func(m *Metadata, _ *BinHeader) { m.Keyslots["1"].Area.Offset = DefaultHeaderSize }, 0, ErrAreaOutside},
		{"overlapping keyslots", 0, func(m *Metadata, _ *BinHeader) { m.Keyslots["1"].Area.Offset = m.Keyslots["0"].Area.Offset + 4096 }, 0, ErrAreaOverlap},
		{"segment inside keyslots area", 0, func(m *Metadata, _ *BinHeader) { m.Segments["0"].Offset = 1 << 20 }, 0, ErrAreaOverlap},
		{"segment past the device", 0, func(m *Metadata, _ *BinHeader) { m.Segments["0"].Offset = testDeviceSize }, 0, ErrAreaOutside},
		{"fixed segment too long", 0, func(m *Metadata, _ *BinHeader) { m.Segments["0"].Size = "8388608" }, 0, ErrAreaOutside},
		{"two segments", 0, func(m *Metadata, _ *BinHeader) {
			c := *m.Segments["0"]
			m.Segments["1"] = &c
		}, 0, ErrLayout},
		{"unaligned segment", 0, func(m *Metadata, _ *BinHeader) { m.Segments["0"].Offset += 512 }, 0, ErrLayout},
		{"integrity segment", 0, func(m *Metadata, _ *BinHeader) {
			m.Segments["0"].Integrity = json.RawMessage(`{"type":"hmac(sha256)"}`)
		}, 0, ErrUnsupported},
		{"reencrypt requirement", 0, func(m *Metadata, _ *BinHeader) {
			m.Config.Requirements = json.RawMessage(`{"mandatory":["online-reencrypt-v2"]}`)
		}, 0, ErrUnsupported},
		{"unknown persistent flag", 0, func(m *Metadata, _ *BinHeader) { m.Config.Flags = []string{"no-journal"} }, 0, ErrUnsupported},
		{"argon2 memory bomb", 0, func(m *Metadata, _ *BinHeader) {
			m.Keyslots["1"].KDF = KDF{Type: KDFArgon2id, Time: 4, Memory: 1 << 24, CPUs: 4, Salt: make([]byte, 32)}
		}, 0, ErrKDF},
		{"pbkdf2 one iteration", 0, func(m *Metadata, _ *BinHeader) { m.Keyslots["0"].KDF.Iterations = 1 }, 0, ErrKDF},
		{"pbkdf2 endless", 0, func(m *Metadata, _ *BinHeader) { m.Keyslots["0"].KDF.Iterations = 1 << 30 }, 0, ErrKDF},
		{"digest sha1-sized", 0, func(m *Metadata, _ *BinHeader) { m.Digests["0"].Digest = m.Digests["0"].Digest[:20] }, 0, ErrKDF},
		{"oversized JSON area", 128 << 10, func(m *Metadata, _ *BinHeader) { m.Config.JSONSize = 128<<10 - BinHeaderSize }, 0, ErrJSONSize},
		{"truncated partition", 0, func(*Metadata, *BinHeader) {}, SmallDataOffset, ErrAreaOutside},
		{"keyslots area past a truncated partition", 0, func(*Metadata, *BinHeader) {}, 1 << 20, ErrAreaOutside},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev, _ := validVolume(t)
			hdr := tc.hdrSize
			if hdr == 0 {
				hdr = DefaultHeaderSize
			}
			forge(t, dev, hdr, tc.edit)
			s, err := ReadSnapshot(dev, dev.size)
			if err != nil {
				t.Fatalf("forged header did not parse: %v", err)
			}
			size := tc.size
			if size == 0 {
				size = dev.size
			}
			err = Check(s, size)
			t.Logf("Check: %v", err)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Check: %v, want %v", err, tc.want)
			}
		})
	}
}

// TestCipherNullWouldOpenWithAnyKey shows why the policy matters: a forged
// cipher_null keyslot carries plaintext AF stripes, so any passphrase
// "opens" it. Unlock refuses the cipher itself too.
func TestCipherNullKeyslotNeverOpens(t *testing.T) {
	dev, _ := validVolume(t)
	forge(t, dev, DefaultHeaderSize, func(m *Metadata, _ *BinHeader) { m.Keyslots["0"].Area.Encryption = "cipher_null-ecb" })
	s, err := ReadSnapshot(dev, dev.size)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Unlock([]byte("anything")); !errors.Is(err, ErrCipher) {
		t.Fatalf("unlock of a cipher_null keyslot: %v, want ErrCipher", err)
	}
}

func TestReadSnapshotFaults(t *testing.T) {
	flip := func(off int64) func(d *memDevice) {
		return func(d *memDevice) {
			b := make([]byte, 1)
			d.ReadAt(b, off)
			b[0] ^= 0x40
			d.WriteAt(b, off)
		}
	}
	backupWith := func(edit func(m *Metadata, bin *BinHeader)) func(d *memDevice) {
		return func(d *memDevice) {
			s, err := ReadSnapshot(d, d.size)
			if err != nil {
				t.Fatal(err)
			}
			var m Metadata
			json.Unmarshal(s.JSON, &m)
			bin := s.Header
			edit(&m, &bin)
			_, backup, err := encodeHeaders(bin, &m, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			d.WriteAt(backup, DefaultHeaderSize)
		}
	}
	jsonText := func(text string) func(d *memDevice) {
		return func(d *memDevice) {
			forgeRaw(t, d, text)
		}
	}
	for _, tc := range []struct {
		name   string
		fault  func(d *memDevice)
		size   uint64
		want   error
		usable bool // a snapshot comes back for Repair
	}{
		{"no magic", func(d *memDevice) { d.WriteAt(make([]byte, 512), 0) }, 0, ErrNotLUKS2, false},
		{"LUKS1 magic", func(d *memDevice) { d.WriteAt([]byte("LUKS\xba\xbe\x00\x01"), 0) }, 0, ErrNotLUKS2, false},
		{"mismatched backup, same seqid", backupWith(func(m *Metadata, _ *BinHeader) { m.Tokens = map[string]json.RawMessage{} }), 0, ErrHeaderMismatch, false},
		{"backup two updates ahead", backupWith(func(_ *Metadata, b *BinHeader) { b.SeqID += 2 }), 0, ErrHeaderMismatch, false},
		{"backup with other uuid", backupWith(func(_ *Metadata, b *BinHeader) { b.UUID = "00000000-0000-4000-8000-000000000000" }), 0, ErrHeaderMismatch, false},
		{"backup ahead with a different segment", backupWith(func(m *Metadata, b *BinHeader) {
			b.SeqID++
			m.Segments["0"].Offset += 4096
		}), 0, ErrHeaderMismatch, false},
		{"backup one update ahead", backupWith(func(m *Metadata, b *BinHeader) {
			b.SeqID++
			m.Tokens = map[string]json.RawMessage{}
		}), 0, ErrInterruptedUpdate, true},
		{"primary checksum damaged", flip(5000), 0, ErrInterruptedUpdate, true},
		{"backup checksum damaged", flip(DefaultHeaderSize + 5000), 0, ErrInterruptedUpdate, true},
		{"both copies damaged", func(d *memDevice) { flip(5000)(d); flip(DefaultHeaderSize + 5000)(d) }, 0, ErrCorruptHeader, false},
		{"primary hdr_size damaged", func(d *memDevice) { d.WriteAt([]byte{0, 0, 0, 0, 0, 0, 0x30, 0}, 8) }, 0, ErrInterruptedUpdate, true},
		{"duplicate JSON key", jsonText(`DUP`), 0, ErrCorruptHeader, false},
		{"unknown JSON field", jsonText(`UNKNOWN`), 0, ErrCorruptHeader, false},
		{"truncated partition", func(*memDevice) {}, 20 << 10, ErrTruncated, false},
		{"truncated in the keyslots", func(*memDevice) {}, 300 << 10, ErrTruncated, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev, pass := validVolume(t)
			tc.fault(dev)
			size := tc.size
			if size == 0 {
				size = dev.size
			}
			dev.size = size
			s, err := ReadSnapshot(dev, size)
			t.Logf("ReadSnapshot: %v", err)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if (s != nil) != tc.usable {
				t.Fatalf("snapshot returned: %v, want %v", s != nil, tc.usable)
			}
			if !tc.usable {
				return
			}
			if err := Check(s, size); err != nil {
				t.Fatal(err)
			}
			if err := Repair(dev, s); err != nil {
				t.Fatal(err)
			}
			s, err = ReadSnapshot(dev, size)
			if err != nil {
				t.Fatalf("after repair: %v", err)
			}
			if _, _, err := s.Unlock(pass); err != nil {
				t.Fatalf("unlock after repair: %v", err)
			}
		})
	}
}

// forgeRaw rewrites both JSON areas with a textual edit of the JSON:
// DUP repeats the "config" key, UNKNOWN adds an unknown keyslot field.
func forgeRaw(t testing.TB, d *memDevice, what string) {
	s, err := ReadSnapshot(d, d.size)
	if err != nil {
		t.Fatal(err)
	}
	text := string(s.JSON)
	switch what {
	case "DUP":
		i := strings.LastIndex(text, `,"config"`)
		text = text[:i] + text[i:len(text)-1] + text[i:]
	case "UNKNOWN":
		text = strings.Replace(text, `"type":"luks2"`, `"type":"luks2","evil":1`, 1)
	}
	if text == string(s.JSON) {
		t.Fatal("forgeRaw changed nothing")
	}
	for _, backup := range []bool{false, true} {
		bin := s.Header
		bin.Backup = backup
		if backup {
			bin.HeaderOffset = DefaultHeaderSize
		}
		area := make([]byte, DefaultHeaderSize)
		copy(area[BinHeaderSize:], text)
		if err := bin.encodeArea(area); err != nil {
			t.Fatal(err)
		}
		d.WriteAt(area, int64(bin.HeaderOffset))
	}
	if bytes.Contains([]byte(text), []byte("\x00")) {
		t.Fatal("NUL in forged text")
	}
}
