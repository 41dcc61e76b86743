package storage

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"inert/storage/luks2"
)

func TestVolumeIDRoundTrip(t *testing.T) {
	v := VolumeID{
		ID: "0f1e2d3c-4b5a-4697-8877-665544332211", Label: "lapee-nonvolatile", Partition: "vdb1",
		PartName: ZonePrimary, KeySource: "tpm", Cipher: luks2.CipherXTS, KeyBits: 512,
		Created: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC),
	}
	b, err := v.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("version="+volumeIDVersion+"\n")) || !bytes.Contains(b, []byte("\nvolume-id="+v.ID+"\n")) {
		t.Fatalf("file does not start with its version and name the id:\n%s", b)
	}
	got, err := ParseVolumeID(b)
	if err != nil {
		t.Fatal(err)
	}
	if got != v {
		t.Fatalf("round trip %+v, want %+v", got, v)
	}
	// A later inert may add facts: unknown keys are ignored.
	if got, err := ParseVolumeID(append(b, "future-fact=1\n"...)); err != nil || got != v {
		t.Fatalf("with an unknown key: %+v %v", got, err)
	}
}

func TestParseVolumeIDRejects(t *testing.T) {
	good, err := VolumeID{ID: "0f1e2d3c-4b5a-4697-8877-665544332211", KeyBits: 512}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	replace := func(old, new string) []byte { return bytes.Replace(good, []byte(old), []byte(new), 1) }
	for name, b := range map[string][]byte{
		"empty":              nil,
		"no version line":    good[bytes.IndexByte(good, '\n')+1:],
		"other version":      replace(volumeIDVersion, "inert-volume-id-v2"),
		"id not a uuid":      replace("volume-id=0f1e2d3c", "volume-id=XXXXXXXX"),
		"upper-case id":      replace("volume-id=0f1e2d3c", "volume-id=0F1E2D3C"),
		"luks-uuid differs":  replace("luks-uuid=0f1e2d3c", "luks-uuid=1f1e2d3c"),
		"duplicate key":      append(bytes.Clone(good), "label=again\n"...),
		"line without =":     append(bytes.Clone(good), "garbage\n"...),
		"control character":  replace("label=", "label=\x1b[2J"),
		"key-bits not a num": replace("key-bits=512", "key-bits=lots"),
		"bad time":           replace("created=0001", "created=yesterday"),
		"oversized":          append(bytes.Clone(good), bytes.Repeat([]byte("x=y\n"), maxVolumeID)...),
	} {
		if _, err := ParseVolumeID(b); !errors.Is(err, ErrVolumeID) {
			t.Errorf("%s: %v, want ErrVolumeID", name, err)
		}
	}
}

func TestVolumeIDMarshalRefusesBadValues(t *testing.T) {
	for name, v := range map[string]VolumeID{
		"no id":             {},
		"newline in label":  {ID: "0f1e2d3c-4b5a-4697-8877-665544332211", Label: "a\nvolume-id=x"},
		"space in partname": {ID: "0f1e2d3c-4b5a-4697-8877-665544332211", PartName: "ZONE A"},
	} {
		if _, err := v.Marshal(); !errors.Is(err, ErrVolumeID) {
			t.Errorf("%s: %v, want ErrVolumeID", name, err)
		}
	}
}

func FuzzParseVolumeID(f *testing.F) {
	good, _ := VolumeID{ID: "0f1e2d3c-4b5a-4697-8877-665544332211", Label: "l", KeyBits: 256}.Marshal()
	f.Add(good)
	f.Add([]byte("version=" + volumeIDVersion + "\n"))
	f.Add([]byte("version=" + volumeIDVersion + "\nvolume-id=\nluks-uuid=\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseVolumeID(b)
		if err != nil {
			if !errors.Is(err, ErrVolumeID) {
				t.Fatalf("error %v does not wrap ErrVolumeID", err)
			}
			return
		}
		// Anything accepted is a well-formed id that survives a round trip.
		out, err := v.Marshal()
		if err != nil {
			t.Fatalf("accepted %q but cannot write it back: %v", b, err)
		}
		again, err := ParseVolumeID(out)
		if err != nil || again != v {
			t.Fatalf("round trip of %q: %+v %v", b, again, err)
		}
	})
}

// TestProvisionWritesVolumeID: provisioning writes the id file with the
// UUID cryptsetup reads from the header, a reopen reads it back, a copied
// file is reported, a volume without the file still opens.
func TestProvisionWritesVolumeID(t *testing.T) {
	r := newRig(t, []byte(Marker))
	created := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	r.p.Now = func() time.Time { return created }
	st, err := r.p.Provision(context.Background(), r.part, r.spec, r.key)
	if err != nil {
		t.Fatal(err)
	}
	uuid := luksUUIDOf(t, r.img)
	file := filepath.Join(r.spec.Mount, VolumeIDFile)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ParseVolumeID(b)
	if err != nil {
		t.Fatal(err)
	}
	if v.ID != uuid || st.VolumeID != uuid || st.VolumeIDError != "" || v.KeyBits != 512 || v.Cipher != luks2.CipherXTS ||
		v.PartName != ZonePrimary || v.Partition != "vdb1" || v.KeySource != "service" || !v.Created.Equal(created) || v.Label != r.spec.Label {
		t.Fatalf("volume-id %+v, state %+v, cryptsetup UUID %s", v, st, uuid)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o444 {
		t.Errorf("volume-id mode %v, want read-only", fi.Mode().Perm())
	}

	// A file naming another volume is reported, the volume still opens.
	other := bytes.Replace(b, []byte(uuid), []byte("00000000-0000-4000-8000-000000000000"), 2)
	os.Chmod(file, 0o644)
	if err := os.WriteFile(file, other, 0o444); err != nil {
		t.Fatal(err)
	}
	st, err = r.p.Provision(context.Background(), r.part, r.spec, r.key)
	if err != nil || st.VolumeID != "00000000-0000-4000-8000-000000000000" || !strings.Contains(st.VolumeIDError, "names another volume") {
		t.Fatalf("copied id: state %+v err %v", st, err)
	}
	// No file (a volume formatted elsewhere): opened, no id, and why.
	os.Remove(file)
	st, err = r.p.Provision(context.Background(), r.part, r.spec, r.key)
	if err != nil || st.VolumeID != "" || !strings.Contains(st.VolumeIDError, "volume-id file unusable") || st.Mount == "" {
		t.Fatalf("missing id: state %+v err %v", st, err)
	}
}

// TestProvisionVolumeIDWriteFails: when the id cannot be written the fresh
// flag stays, nothing stays mounted or mapped, and the next boot makes the
// filesystem and the id again.
func TestProvisionVolumeIDWriteFails(t *testing.T) {
	r := newRig(t, []byte(Marker))
	mount := r.spec.Mount
	r.spec.Mount = filepath.Join(mount, "missing") // the fake mounter makes no directory
	if _, err := r.p.Provision(context.Background(), r.part, r.spec, r.key); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want a write failure", err)
	}
	dump, _ := exec.Command("cryptsetup", "luksDump", r.img).Output()
	if !bytes.Contains(dump, []byte(luks2.FreshTokenType)) || len(r.m.mapped) != 0 {
		t.Fatalf("after a failed id write: mapped %v, luksDump:\n%s", r.m.mapped, dump)
	}
	r.spec.Mount = mount
	st, err := r.p.Provision(context.Background(), r.part, r.spec, r.key)
	if err != nil || !st.FormattedFilesystem || st.FormattedLUKS || r.fs.made != 2 || st.VolumeID != luksUUIDOf(t, r.img) {
		t.Fatalf("next boot: state %+v err %v mkfs %d", st, err, r.fs.made)
	}
}

// luksUUIDOf asks cryptsetup, not inert, for the header's UUID.
func luksUUIDOf(t *testing.T, img string) string {
	t.Helper()
	out, err := exec.Command("cryptsetup", "luksUUID", img).Output()
	if err != nil {
		t.Fatalf("cryptsetup luksUUID: %v", err)
	}
	return strings.TrimSpace(string(out))
}
