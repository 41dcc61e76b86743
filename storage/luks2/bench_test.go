package luks2

import "testing"

// BenchmarkPBKDF2Unlock and BenchmarkArgon2idUnlock compare the unlock cost
// of the two keyslot kinds inert writes: a 256-bit sealed secret behind
// PBKDF2 (1000 iterations) and a typed passphrase behind argon2id with
// cryptsetup-like cost (4 passes, 64 MiB here to stay quick, 2 lanes).
func BenchmarkPBKDF2Unlock(b *testing.B) {
	benchUnlock(b, PBKDF2Params())
}

func BenchmarkArgon2idUnlock(b *testing.B) {
	benchUnlock(b, Argon2idParams(4, 64<<10, 2))
}

func benchUnlock(b *testing.B, kdf KDF) {
	pass := randomBytes(b, 32)
	l, err := Build(randomBytes(b, 64), testDeviceSize, FormatOptions{Keyslots: []KeyslotSpec{{Passphrase: pass, KDF: kdf}}})
	if err != nil {
		b.Fatal(err)
	}
	dev := newMemDevice(testDeviceSize)
	if err := l.Write(dev); err != nil {
		b.Fatal(err)
	}
	s, err := ReadSnapshot(dev, testDeviceSize)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		key, _, err := s.Unlock(pass)
		if err != nil {
			b.Fatal(err)
		}
		clear(key)
	}
}
