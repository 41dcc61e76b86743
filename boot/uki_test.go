package boot

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestRecordUKI(t *testing.T) {
	mp := t.TempDir()
	run := t.TempDir()
	spec := DefaultESPSpec()
	loader := filepath.Join(mp, spec.Loader)
	mustWrite(t, loader, strings.Repeat("MZ UKI bytes ", 100000))
	esp := &ESP{Device: "/dev/sda1", PartUUID: "aaaaaaaa-1111-2222-3333-444444444444",
		FirmwarePartUUID: "aaaaaaaa-1111-2222-3333-444444444444", FirmwareImageID: "\\EFI\\Boot\\BootX64.efi\nevil=1",
		MountPoint: mp}
	digest, err := RecordUKI(run, esp, spec)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sha256sum", loader).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := string(bytes.Fields(out)[0])
	if digest != want {
		t.Fatalf("digest %s, sha256sum says %s", digest, want)
	}
	if got := readString(t, filepath.Join(run, UKIDigestFile)); got != want+"\n" {
		t.Errorf("%s = %q", UKIDigestFile, got)
	}
	src := readString(t, filepath.Join(run, UKISourceFile))
	lines := strings.Split(strings.TrimSuffix(src, "\n"), "\n")
	var keys []string
	kv := map[string]string{}
	for _, l := range lines {
		k, v, _ := strings.Cut(l, "=")
		keys = append(keys, k)
		kv[k] = v
	}
	if strings.Join(keys, ",") != "source,device,partuuid,firmware-partuuid,firmware-image-identifier,trusted-as-executed" {
		t.Fatalf("keys %v", keys)
	}
	if kv["source"] != "boot-media-scan" || kv["device"] != "/dev/sda1" || kv["partuuid"] != esp.PartUUID ||
		kv["trusted-as-executed"] != "false" || !strings.HasPrefix(kv["firmware-image-identifier"], `\EFI\Boot\BootX64.efi`) {
		t.Errorf("record %q", src)
	}
	for _, f := range []string{UKIDigestFile, UKISourceFile} {
		if st, _ := os.Stat(filepath.Join(run, f)); st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", f, st.Mode().Perm())
		}
	}
	// Fault: no loader.
	os.Remove(loader)
	if _, err := RecordUKI(run, esp, spec); !errors.Is(err, ErrUKIRecord) {
		t.Errorf("missing loader: err = %v", err)
	}
}
