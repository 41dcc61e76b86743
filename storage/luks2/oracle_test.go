package luks2

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"testing"

	luks "github.com/anatol/luks.go"
)

// TestCryptsetupAcceptsInertVolumes is the writer's oracle: cryptsetup must
// parse every header Format writes, agree on every field, open each keyslot
// with its exact passphrase bytes, refuse a wrong one, and recover the same
// volume key.
func TestCryptsetupAcceptsInertVolumes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		size    int64
		keySize int
		sector  int
	}{
		{"aes256-xts small device", 24 << 20, 64, 0},
		{"aes128-xts", 24 << 20, 32, 0},
		{"aes256-xts 4k sectors default offset", 80 << 20, 64, 4096},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, img := newImage(t, tc.size)
			volumeKey := randomBytes(t, tc.keySize)
			tpmSecret := randomBytes(t, 32) // binary, may contain NUL and newlines
			typed := []byte("correct horse battery staple")
			token := json.RawMessage(`{"type":"systemd-tpm2","keyslots":["0"],"tpm2-pcrs":[7,11,12]}`)
			meta, err := Format(f, uint64(tc.size), volumeKey, FormatOptions{
				Label:      "lapee-nonvolatile",
				Subsystem:  "inert",
				SectorSize: tc.sector,
				Keyslots: []KeyslotSpec{
					{Passphrase: tpmSecret, KDF: PBKDF2Params()},
					{Passphrase: typed, KDF: fastArgon},
				},
				Tokens: []json.RawMessage{token},
				Fresh:  true,
			})
			if err != nil {
				t.Fatal(err)
			}

			// cryptsetup's JSON equals ours field by field.
			if got, want := cryptsetupJSON(t, img), generic(t, meta); !reflect.DeepEqual(got, want) {
				t.Fatalf("cryptsetup metadata differs:\n got %v\nwant %v", got, want)
			}
			dump, rc := cryptsetup(t, "luksDump", img)
			if rc != 0 {
				t.Fatalf("luksDump exit %d", rc)
			}
			for _, want := range []string{`(?m)^Label:\s+lapee-nonvolatile$`, `cipher: aes-xts-plain64`, `\d: ` + FreshTokenType, `\d: systemd-tpm2`, `(?m)^Epoch:\s+1$`} {
				if !regexp.MustCompile(want).MatchString(dump) {
					t.Errorf("luksDump lacks %q:\n%s", want, dump)
				}
			}

			for slot, pass := range [][]byte{tpmSecret, typed} {
				kf := writeKeyFile(t, pass)
				if _, rc := cryptsetup(t, "open", "--type", "luks2", "--test-passphrase", "--key-slot", fmt.Sprint(slot), "--key-file", kf, img); rc != 0 {
					t.Errorf("slot %d: cryptsetup open --test-passphrase exit %d", slot, rc)
				}
				if got := cryptsetupVolumeKey(t, img, kf); !bytes.Equal(got, volumeKey) {
					t.Errorf("slot %d: cryptsetup recovered a different volume key", slot)
				}
			}
			wrong := writeKeyFile(t, append(append([]byte(nil), tpmSecret[:31]...), tpmSecret[31]^1))
			if _, rc := cryptsetup(t, "open", "--type", "luks2", "--test-passphrase", "--key-file", wrong, img); rc == 0 {
				t.Error("cryptsetup accepted a wrong key")
			}

			// luks.go (the opener in the image) reads it and unseals the same key.
			assertLuksGoUnseals(t, img, 0, tpmSecret, volumeKey)
		})
	}
}

// assertLuksGoUnseals opens img with luks.go and proves it recovered
// wantKey without exporting it: HMAC under the unsealed key must match HMAC
// under wantKey.
func assertLuksGoUnseals(t *testing.T, img string, slot int, pass, wantKey []byte) {
	t.Helper()
	dev, err := luks.Open(img)
	if err != nil {
		t.Fatalf("luks.go Open: %v", err)
	}
	defer dev.Close()
	vol, err := dev.UnsealVolume(slot, pass)
	if err != nil {
		t.Fatalf("luks.go UnsealVolume: %v", err)
	}
	msg := []byte("inert key check")
	got, err := vol.HMAC(crypto.SHA256, msg)
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, wantKey)
	mac.Write(msg)
	if !hmac.Equal(got, mac.Sum(nil)) {
		t.Fatal("luks.go unsealed a different volume key")
	}
	if _, err := dev.UnsealVolume(slot, append([]byte("x"), pass...)); err == nil {
		t.Fatal("luks.go accepted a wrong passphrase")
	}
}

// TestInertOpensCryptsetupVolumes is the reader's oracle: volumes made by
// cryptsetup luksFormat (argon2id and pbkdf2, 256- and 512-bit keys) pass
// ReadSnapshot and Check, and Unlock recovers the key cryptsetup reports.
func TestInertOpensCryptsetupVolumes(t *testing.T) {
	for _, tc := range []struct {
		pbkdf   string
		keyBits int
		extra   []string
	}{
		{"argon2id", 512, []string{"--pbkdf-memory", "1024", "--pbkdf-force-iterations", "4", "--pbkdf-parallel", "2"}},
		{"argon2id", 256, []string{"--pbkdf-memory", "1024", "--pbkdf-force-iterations", "4", "--pbkdf-parallel", "1"}},
		{"pbkdf2", 512, []string{"--pbkdf-force-iterations", "1000"}},
		{"pbkdf2", 256, []string{"--pbkdf-force-iterations", "1000"}},
	} {
		t.Run(fmt.Sprintf("%s-%d", tc.pbkdf, tc.keyBits), func(t *testing.T) {
			const size = 20 << 20
			f, img := newImage(t, size)
			pass := []byte("cryptsetup passphrase\x00with a NUL")
			kf := writeKeyFile(t, pass)
			args := append([]string{"luksFormat", "--batch-mode", "--type", "luks2", "--cipher", "aes-xts-plain64",
				"--key-size", fmt.Sprint(tc.keyBits), "--pbkdf", tc.pbkdf, "--label", "lapee-nonvolatile", "--key-file", kf}, tc.extra...)
			if _, rc := cryptsetup(t, append(args, img)...); rc != 0 {
				t.Fatalf("luksFormat exit %d", rc)
			}
			want := cryptsetupVolumeKey(t, img, kf)
			if len(want) != tc.keyBits/8 {
				t.Fatalf("cryptsetup reports a %d-byte key", len(want))
			}

			snap, err := ReadSnapshot(f, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := Check(snap, size); err != nil {
				t.Fatalf("policy refused a cryptsetup default volume: %v", err)
			}
			if got := generic(t, snap.Meta); !reflect.DeepEqual(got, cryptsetupJSON(t, img)) {
				t.Fatalf("metadata read differs from cryptsetup's:\n got %v", got)
			}
			if snap.Header.Label != "lapee-nonvolatile" {
				t.Errorf("label %q", snap.Header.Label)
			}
			key, slot, err := snap.Unlock(pass)
			if err != nil {
				t.Fatal(err)
			}
			if slot != "0" || !bytes.Equal(key, want) {
				t.Fatalf("unlock gave slot %s and a different key", slot)
			}
			if _, _, err := snap.Unlock([]byte("cryptsetup passphrase")); err != ErrWrongKey {
				t.Fatalf("wrong passphrase: %v, want ErrWrongKey", err)
			}
			assertLuksGoUnseals(t, img, 0, pass, want)
		})
	}
}
