package luks2

import (
	"bytes"
	stdpbkdf2 "crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"hash"
	"testing"
)

const testDeviceSize = 8 << 20

// marker stands in for the provisioning marker at offset 0.
var marker = []byte("LapEE nonvolatile provisioning marker v1\n")

func markedDevice(t testing.TB) *memDevice {
	d := newMemDevice(testDeviceSize)
	if _, err := d.WriteAt(append(marker, make([]byte, 512-len(marker))...), 0); err != nil {
		t.Fatal(err)
	}
	return d
}

// buildTest lays out a PBKDF2 volume (fast) with the fresh token.
func buildTest(t testing.TB, key, pass []byte) *Layout {
	t.Helper()
	l, err := Build(key, testDeviceSize, FormatOptions{
		Label:    "lapee-nonvolatile",
		Keyslots: []KeyslotSpec{{Passphrase: pass, KDF: PBKDF2Params()}},
		Fresh:    true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestRoundTrip(t *testing.T) {
	key, pass := randomBytes(t, 64), randomBytes(t, 32)
	dev := markedDevice(t)
	if err := buildTest(t, key, pass).Write(dev); err != nil {
		t.Fatal(err)
	}
	s, err := ReadSnapshot(dev, testDeviceSize)
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(s, testDeviceSize); err != nil {
		t.Fatal(err)
	}
	if !s.IsFresh() || s.Header.SeqID != 1 || s.Header.Label != "lapee-nonvolatile" {
		t.Fatalf("fresh %v seqid %d label %q", s.IsFresh(), s.Header.SeqID, s.Header.Label)
	}
	if got := uint64(s.Meta.Segments["0"].Offset); got != SmallDataOffset {
		t.Errorf("data offset %d on a small device, want %d", got, SmallDataOffset)
	}
	got, slot, err := s.Unlock(pass)
	if err != nil || slot != "0" || !bytes.Equal(got, key) {
		t.Fatalf("unlock: slot %q err %v, key equal %v", slot, err, bytes.Equal(got, key))
	}
	if _, _, err := s.Unlock(pass[:31]); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong key: %v", err)
	}

	// The snapshot is the truth: wiping the disk afterwards changes nothing.
	wiped := newMemDevice(testDeviceSize)
	*dev = *wiped
	if got, _, err := s.Unlock(pass); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("unlock from snapshot after the disk changed: %v", err)
	}
}

func TestClearFreshAndAddToken(t *testing.T) {
	key, pass := randomBytes(t, 64), randomBytes(t, 32)
	dev := markedDevice(t)
	if err := buildTest(t, key, pass).Write(dev); err != nil {
		t.Fatal(err)
	}
	s, err := ReadSnapshot(dev, testDeviceSize)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AddToken(dev, s, json.RawMessage(`{"type":"inert-volume","keyslots":["0"],"id":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if s, err = ReadSnapshot(dev, testDeviceSize); err != nil {
		t.Fatal(err)
	}
	if err := ClearFresh(dev, s); err != nil {
		t.Fatal(err)
	}
	s, err = ReadSnapshot(dev, testDeviceSize)
	if err != nil {
		t.Fatal(err)
	}
	if s.IsFresh() || s.Header.SeqID != 3 || len(s.Meta.TokensOfType("inert-volume")) != 1 {
		t.Fatalf("fresh %v seqid %d tokens %v", s.IsFresh(), s.Header.SeqID, s.Meta.Tokens)
	}
	if got, _, err := s.Unlock(pass); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("unlock after rewrites: %v", err)
	}
	// Rewrite refuses to change anything but tokens.
	m := *s.Meta
	m.Config.KeyslotsSize += 4096
	if err := Rewrite(dev, s, &m); !errors.Is(err, ErrBadOptions) {
		t.Fatalf("structural rewrite: %v", err)
	}
}

// TestFormatPowerCut cuts power after every sector Format writes. Each state
// must be either "not LUKS, marker intact" (provisioning starts over) or a
// volume that reads (possibly after Repair) and opens with the key.
func TestFormatPowerCut(t *testing.T) {
	key, pass := randomBytes(t, 64), randomBytes(t, 32)
	l := buildTest(t, key, pass)
	count := &countDevice{memDevice: markedDevice(t)}
	if err := l.Write(count); err != nil {
		t.Fatal(err)
	}
	luksStates := 0
	for budget := 0; budget <= count.sectors; budget++ {
		dev := &cutDevice{memDevice: markedDevice(t), budget: budget}
		err := l.Write(dev)
		if (err == nil) != (budget == count.sectors) {
			t.Fatalf("budget %d: write error %v", budget, err)
		}
		first := make([]byte, 512)
		dev.ReadAt(first, 0)
		if !IsLUKS(first) {
			if !bytes.Equal(first[:len(marker)], marker) {
				t.Fatalf("budget %d: neither LUKS nor marker at offset 0", budget)
			}
			continue
		}
		if budget <= count.sectors-BinHeaderSize/512 {
			t.Fatalf("budget %d of %d: LUKS magic before the final header write", budget, count.sectors)
		}
		luksStates++
		assertOpens(t, dev.memDevice, pass, key)
	}
	if luksStates == 0 {
		t.Error("no cut point produced a volume")
	}
}

// TestRewritePowerCut cuts power after every sector of ClearFresh: the
// volume must always read (possibly after Repair) and open, fresh or not.
func TestRewritePowerCut(t *testing.T) {
	key, pass := randomBytes(t, 64), randomBytes(t, 32)
	base := markedDevice(t)
	if err := buildTest(t, key, pass).Write(base); err != nil {
		t.Fatal(err)
	}
	s, err := ReadSnapshot(base, testDeviceSize)
	if err != nil {
		t.Fatal(err)
	}
	count := &countDevice{memDevice: base.clone()}
	if err := ClearFresh(count, s); err != nil {
		t.Fatal(err)
	}
	sawFresh, sawCleared := false, false
	for budget := 0; budget <= count.sectors; budget++ {
		dev := &cutDevice{memDevice: base.clone(), budget: budget}
		_ = ClearFresh(dev, s)
		after := assertOpens(t, dev.memDevice, pass, key)
		if after.IsFresh() {
			sawFresh = true
		} else {
			sawCleared = true
		}
	}
	if !sawFresh || !sawCleared {
		t.Errorf("cut states: fresh %v cleared %v, want both", sawFresh, sawCleared)
	}
}

// assertOpens reads dev, repairs an interrupted update, and unlocks.
func assertOpens(t *testing.T, dev *memDevice, pass, key []byte) *Snapshot {
	t.Helper()
	s, err := ReadSnapshot(dev, testDeviceSize)
	if errors.Is(err, ErrInterruptedUpdate) {
		if err := Check(s, testDeviceSize); err != nil {
			t.Fatalf("interrupted snapshot fails policy: %v", err)
		}
		if err := Repair(dev, s); err != nil {
			t.Fatal(err)
		}
		s, err = ReadSnapshot(dev, testDeviceSize)
	}
	if err != nil {
		t.Fatalf("read after cut: %v", err)
	}
	if got, _, err := s.Unlock(pass); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("unlock after cut: %v", err)
	}
	return s
}

// TestPBKDF2MatchesStdlib checks the local PBKDF2 against crypto/pbkdf2.
func TestPBKDF2MatchesStdlib(t *testing.T) {
	for _, h := range []func() hash.Hash{sha256.New, sha512.New} {
		for _, n := range []int{1, 2, 1000} {
			for _, keyLen := range []int{1, 32, 64, 100} {
				pass, salt := randomBytes(t, 17), randomBytes(t, 32)
				want, err := stdpbkdf2.Key(h, string(pass), salt, n, keyLen)
				if err != nil {
					t.Fatal(err)
				}
				if got := pbkdf2(h, pass, salt, n, keyLen); !bytes.Equal(got, want) {
					t.Fatalf("pbkdf2 iterations %d len %d differs from crypto/pbkdf2", n, keyLen)
				}
			}
		}
	}
}

func TestAFRoundTrip(t *testing.T) {
	for _, n := range []int{32, 64, 33} {
		key := randomBytes(t, n)
		split, err := afSplit(key, Stripes, sha256.New, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		got, err := afMerge(split, n, Stripes, sha256.New)
		if err != nil || !bytes.Equal(got, key) {
			t.Fatalf("AF round trip of %d bytes: %v", n, err)
		}
		split[0] ^= 1 // every stripe matters
		if got, _ := afMerge(split, n, Stripes, sha256.New); bytes.Equal(got, key) {
			t.Fatal("AF merge ignored a flipped stripe")
		}
	}
}

func TestBuildRejectsBadOptions(t *testing.T) {
	pass := []byte("p")
	ok := []KeyslotSpec{{Passphrase: pass, KDF: PBKDF2Params()}}
	for _, tc := range []struct {
		name string
		key  []byte
		size uint64
		opts FormatOptions
		want error
	}{
		{"16-byte key", make([]byte, 16), testDeviceSize, FormatOptions{Keyslots: ok}, ErrBadOptions},
		{"no keyslot", make([]byte, 64), testDeviceSize, FormatOptions{}, ErrBadOptions},
		{"tiny device", make([]byte, 64), SmallDataOffset, FormatOptions{Keyslots: ok}, ErrDeviceTooSmall},
		{"sector 1024", make([]byte, 64), testDeviceSize, FormatOptions{Keyslots: ok, SectorSize: 1024}, ErrBadOptions},
		{"argon2i", make([]byte, 64), testDeviceSize, FormatOptions{Keyslots: []KeyslotSpec{{Passphrase: pass, KDF: KDF{Type: KDFArgon2i, Time: 1, Memory: 64, CPUs: 1}}}}, ErrBadOptions},
		{"label too long", make([]byte, 64), testDeviceSize, FormatOptions{Keyslots: ok, Label: string(make([]byte, 60))}, ErrBadOptions},
		{"token without keyslots", make([]byte, 64), testDeviceSize, FormatOptions{Keyslots: ok, Tokens: []json.RawMessage{json.RawMessage(`{"type":"x"}`)}}, ErrBadOptions},
		{"token naming a missing keyslot", make([]byte, 64), testDeviceSize, FormatOptions{Keyslots: ok, Tokens: []json.RawMessage{json.RawMessage(`{"type":"x","keyslots":["5"]}`)}}, ErrBadOptions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Build(tc.key, tc.size, tc.opts); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
