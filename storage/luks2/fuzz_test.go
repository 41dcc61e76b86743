package luks2

import (
	"errors"
	"testing"
)

var sentinels = []error{ErrNotLUKS2, ErrCorruptHeader, ErrHeaderMismatch, ErrInterruptedUpdate, ErrTruncated,
	ErrUnsupported, ErrCipher, ErrKeySize, ErrKDF, ErrAreaOutside, ErrAreaOverlap, ErrJSONSize, ErrLayout, ErrWrongKey}

func wrapsSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// FuzzHeaderJSON feeds arbitrary JSON areas, correctly checksummed in both
// copies, through the reader, the policy and (when cheap) Unlock.
func FuzzHeaderJSON(f *testing.F) {
	dev, _ := validVolume(f)
	s, err := ReadSnapshot(dev, dev.size)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(s.JSON, false)
	f.Add([]byte(`{"keyslots":{},"tokens":{},"segments":{},"digests":{},"config":{"json_size":"12288","keyslots_size":"4096"}}`), true)
	f.Add([]byte(`{"keyslots":{"0":{"type":"luks2","key_size":64,"af":{"type":"luks1","stripes":4000,"hash":"sha256"},"area":{"type":"raw","offset":"32768","size":"258048","encryption":"cipher_null-ecb","key_size":64},"kdf":{"type":"pbkdf2","hash":"sha256","iterations":1000,"salt":"AAAAAAAAAAAAAAAAAAAAAA=="}}},"tokens":{},"segments":{"0":{"type":"crypt","offset":"4194304","size":"dynamic","iv_tweak":"0","encryption":"cipher_null-ecb","sector_size":512}},"digests":{"0":{"type":"pbkdf2","keyslots":["0"],"segments":["0"],"hash":"sha256","iterations":1000,"salt":"AAAAAAAAAAAAAAAAAAAAAA==","digest":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}},"config":{"json_size":"12288","keyslots_size":"4161536"}}`), false)
	f.Fuzz(func(t *testing.T, text []byte, ahead bool) {
		if len(text) >= DefaultHeaderSize-BinHeaderSize {
			return
		}
		d := dev.clone()
		for _, backup := range []bool{false, true} {
			bin := s.Header
			bin.Backup = backup
			if backup {
				bin.HeaderOffset = DefaultHeaderSize
				if ahead {
					bin.SeqID++
				}
			}
			area := make([]byte, DefaultHeaderSize)
			copy(area[BinHeaderSize:], text)
			if err := bin.encodeArea(area); err != nil {
				t.Fatal(err)
			}
			d.WriteAt(area, int64(bin.HeaderOffset))
		}
		snap, err := ReadSnapshot(d, d.size)
		if err != nil && !wrapsSentinel(err) {
			t.Fatalf("unclassified error: %v", err)
		}
		if snap == nil {
			return
		}
		if err := Check(snap, d.size); err != nil {
			if !wrapsSentinel(err) {
				t.Fatalf("unclassified policy error: %v", err)
			}
			return
		}
		for _, ks := range snap.Meta.Keyslots {
			if ks.KDF.Type != KDFPBKDF2 || ks.KDF.Iterations > 5000 {
				return // valid but too slow to try in a fuzz loop
			}
		}
		if _, _, err := snap.Unlock([]byte("pass")); err != nil && !wrapsSentinel(err) {
			t.Fatalf("unclassified unlock error: %v", err)
		}
	})
}

// FuzzDeviceStart puts arbitrary bytes at the start of a device (where a
// partition's first sectors are) and requires a classified answer.
func FuzzDeviceStart(f *testing.F) {
	dev, _ := validVolume(f)
	head := make([]byte, 2*DefaultHeaderSize)
	dev.ReadAt(head, 0)
	f.Add(head)
	f.Add(append([]byte("LUKS\xba\xbe\x00\x02"), make([]byte, 4096)...))
	f.Add(marker)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<20 {
			return
		}
		d := dev.clone()
		d.WriteAt(b, 0)
		snap, err := ReadSnapshot(d, d.size)
		if err != nil && !wrapsSentinel(err) {
			t.Fatalf("unclassified error: %v", err)
		}
		if snap != nil {
			if err := Check(snap, d.size); err != nil && !wrapsSentinel(err) {
				t.Fatalf("unclassified policy error: %v", err)
			}
		}
	})
}
