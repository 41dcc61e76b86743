package initramfs

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"inert/boot"
)

// espToolGet reads a file from the image's ESP with mcopy directly.
func espToolGet(t *testing.T, img string, path string) ([]byte, bool) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	loc, err := FindESP(f, fi.Size())
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command("mcopy", "-i", img+"@@"+strconv.FormatInt(loc.Offset, 10), "::"+path, dst)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if err := cmd.Run(); err != nil {
		return nil, false
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	return b, true
}

func espFsck(t *testing.T, img string) {
	t.Helper()
	disk, _ := os.ReadFile(img)
	loc, err := FindESP(bytes.NewReader(disk), int64(len(disk)))
	if err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(t.TempDir(), "esp.img")
	os.WriteFile(part, disk[loc.Offset:loc.Offset+loc.Size], 0o644)
	if out, err := exec.Command("fsck.fat", "-n", part).CombinedOutput(); err != nil {
		t.Errorf("fsck.fat -n: %v\n%s", err, out)
	}
}

const (
	espTestConfig = `{"port": 8734, "nested": {"ok": true}}`
	espTestWifi   = "Home Net\ncorrect horse 1\n"
)

func TestSetOperatorFiles(t *testing.T) {
	img := imageBuild(t, imageTestUKI(4, 200_000))
	ukiBefore, ok := espToolGet(t, img, ESPLoaderPath)
	if !ok {
		t.Fatal("no UKI on a fresh image")
	}
	err := SetOperatorFiles(img, OperatorEdit{Config: []byte(espTestConfig), Wifi: []byte(espTestWifi)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := espToolGet(t, img, "/EFI/boot/config.json"); !ok || string(got) != espTestConfig {
		t.Errorf("config.json on the image: %q", got)
	}
	if got, ok := espToolGet(t, img, "/EFI/boot/wifi.conf"); !ok || string(got) != espTestWifi {
		t.Error("wifi.conf on the image differs")
	}
	ukiAfter, _ := espToolGet(t, img, ESPLoaderPath)
	if sha256.Sum256(ukiBefore) != sha256.Sum256(ukiAfter) {
		t.Error("the UKI changed")
	}
	espFsck(t, img)

	// Replace the config, then remove it; wifi.conf stays.
	if err := SetOperatorFiles(img, OperatorEdit{Config: []byte(`{"b":2}`)}, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := espToolGet(t, img, "/EFI/boot/config.json"); string(got) != `{"b":2}` {
		t.Errorf("replaced config.json: %q", got)
	}
	if err := SetOperatorFiles(img, OperatorEdit{RemoveConfig: true}, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := espToolGet(t, img, "/EFI/boot/config.json"); ok {
		t.Error("config.json still there after removal")
	}
	if _, ok := espToolGet(t, img, "/EFI/boot/wifi.conf"); !ok {
		t.Error("removing config.json removed wifi.conf")
	}
	if err := SetOperatorFiles(img, OperatorEdit{RemoveWifi: true, RemoveConfig: true}, nil); err != nil {
		t.Fatalf("removing absent files: %v", err)
	}
	if _, ok := espToolGet(t, img, "/EFI/boot/wifi.conf"); ok {
		t.Error("wifi.conf still there after removal")
	}
	espFsck(t, img)
}

func TestSetOperatorFilesRefusals(t *testing.T) {
	img := imageBuild(t, imageTestUKI(5, 100_000))
	const secret = "s3cret$pass"
	notGPT := filepath.Join(t.TempDir(), "plain.img")
	os.WriteFile(notGPT, make([]byte, 1<<20), 0o644)
	cases := []struct {
		name  string
		image string
		edit  OperatorEdit
		want  error
	}{
		{"rejected top-level key", img, OperatorEdit{Config: []byte(`{"trusted_devices": []}`)}, ErrOperatorFile},
		{"rejected key at depth", img, OperatorEdit{Config: []byte(`{"on": {"measurement-body-source": 1}}`)}, ErrOperatorFile},
		{"config not an object", img, OperatorEdit{Config: []byte(`[1, 2]`)}, ErrOperatorFile},
		{"PSK with a dollar", img, OperatorEdit{Wifi: []byte("Home\n" + secret + "\n")}, ErrOperatorFile},
		{"wifi third line", img, OperatorEdit{Wifi: []byte("Home\n" + "abcdefgh1" + "\nmore\n")}, ErrOperatorFile},
		{"good config, bad wifi", img, OperatorEdit{Config: []byte(espTestConfig), Wifi: []byte("x")}, ErrOperatorFile},
		{"set and remove", img, OperatorEdit{Config: []byte(espTestConfig), RemoveConfig: true}, ErrESPConflict},
		{"not a GPT image", notGPT, OperatorEdit{Config: []byte(espTestConfig)}, ErrNoGPT},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, _ := os.ReadFile(c.image)
			err := SetOperatorFiles(c.image, c.edit, nil)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "abcdefgh1") {
				t.Errorf("error shows the passphrase: %v", err)
			}
			if after, _ := os.ReadFile(c.image); !bytes.Equal(before, after) {
				t.Error("a refused edit changed the image")
			}
		})
	}
}

// TestBootSideReadsOperatorFiles copies the whole ESP out with mtools (as a
// mounted vfat would present it) and reads it with the boot side's reader.
func TestBootSideReadsOperatorFiles(t *testing.T) {
	img := imageBuild(t, imageTestUKI(6, 50_000))
	if err := SetOperatorFiles(img, OperatorEdit{Config: []byte(espTestConfig), Wifi: []byte(espTestWifi)}, nil); err != nil {
		t.Fatal(err)
	}
	fat, err := OpenESP(img)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if _, err := fat.mtools("mcopy", "-s", "::/EFI", "::/LAPEE.MARKER", root); err != nil {
		t.Fatal(err)
	}
	of := boot.ReadOperatorFiles(root, boot.DefaultESPSpec(), true)
	if of.ConfigErr != nil || string(of.Config) != espTestConfig {
		t.Errorf("config: %q %v", of.Config, of.ConfigErr)
	}
	if of.WifiErr != nil || of.Wifi == nil || of.Wifi.SSID != "Home Net" {
		t.Errorf("wifi: %v %v", of.Wifi, of.WifiErr)
	}
	if m, err := os.ReadFile(filepath.Join(root, "LAPEE.MARKER")); err != nil || string(m) != ESPMarker {
		t.Errorf("marker %q %v", m, err)
	}
	if _, err := os.Stat(filepath.Join(root, "EFI", "Boot", "BootX64.efi")); err != nil {
		t.Errorf("loader not at %s: %v", boot.DefaultESPSpec().Loader, err)
	}
}
