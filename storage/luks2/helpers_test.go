package luks2

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fastArgon keeps argon2id tests quick; the parameters are still valid for
// cryptsetup.
var fastArgon = Argon2idParams(4, 1024, 2)

// newImage makes a sparse image file of size bytes.
func newImage(t testing.TB, size int64) (*os.File, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return f, path
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// writeKeyFile stores exact passphrase bytes for cryptsetup --key-file.
func writeKeyFile(t testing.TB, pass []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, pass, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// cryptsetup runs the real tool and returns stdout and the exit code.
func cryptsetup(t testing.TB, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command("cryptsetup", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &exit):
		t.Logf("cryptsetup %s: %s", strings.Join(args, " "), strings.TrimSpace(errb.String()))
		return out.String(), exit.ExitCode()
	}
	t.Fatalf("cryptsetup: %v", err)
	return "", -1
}

// cryptsetupVolumeKey asks cryptsetup for the volume key (its own unlock).
func cryptsetupVolumeKey(t testing.TB, img, keyFile string) []byte {
	t.Helper()
	out, rc := cryptsetup(t, "luksDump", "--batch-mode", "--dump-volume-key", "--key-file", keyFile, img)
	if rc != 0 {
		t.Fatalf("cryptsetup --dump-volume-key failed with %d", rc)
	}
	// "MK dump:\t<hex bytes in lines>" until the end.
	i := strings.Index(out, "MK dump:")
	if i < 0 {
		t.Fatalf("no MK dump in:\n%s", out)
	}
	hexText := strings.Join(strings.Fields(out[i+len("MK dump:"):]), "")
	key := make([]byte, len(hexText)/2)
	for j := range key {
		var b byte
		for _, c := range hexText[2*j : 2*j+2] {
			b <<= 4
			switch {
			case c >= '0' && c <= '9':
				b |= byte(c - '0')
			case c >= 'a' && c <= 'f':
				b |= byte(c-'a') + 10
			default:
				t.Fatalf("bad hex %q", hexText)
			}
		}
		key[j] = b
	}
	return key
}

// cryptsetupJSON returns cryptsetup's view of the metadata as a generic tree.
func cryptsetupJSON(t testing.TB, img string) map[string]any {
	t.Helper()
	out, rc := cryptsetup(t, "luksDump", "--dump-json-metadata", img)
	if rc != 0 {
		t.Fatalf("luksDump --dump-json-metadata: exit %d", rc)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("cryptsetup JSON: %v", err)
	}
	return m
}

func generic(t testing.TB, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
