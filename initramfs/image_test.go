package initramfs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// imageTestUKI is deterministic filler standing in for a UKI.
func imageTestUKI(seed uint64, n int) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed)}))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func imageBuild(t *testing.T, uki []byte) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "images", "inert.img")
	var progress bytes.Buffer
	if err := BuildImage(ImageOptions{UKI: uki, Out: out, Progress: &progress}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(progress.String(), "wrote "+out) {
		t.Errorf("progress lacks the final line:\n%s", progress.String())
	}
	return out
}

func imageTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// imageSgdiskField pulls "Label: value" out of `sgdisk -i 1`.
func imageSgdiskField(t *testing.T, info, label string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(label) + `:\s*(.*?)\s*$`).FindStringSubmatch(info)
	if m == nil {
		t.Fatalf("sgdisk output lacks %q:\n%s", label, info)
	}
	return m[1]
}

func TestBuildImageCheckedByRealTools(t *testing.T) {
	uki := imageTestUKI(1, 3<<20+123)
	img := imageBuild(t, uki)

	if v := imageTool(t, "sgdisk", "-v", img); !strings.Contains(v, "No problems found") {
		t.Errorf("sgdisk -v:\n%s", v)
	}
	info := imageTool(t, "sgdisk", "-i", "1", img)
	if got := imageSgdiskField(t, info, "Partition name"); got != "'ESP'" {
		t.Errorf("partition name %s", got)
	}
	if got := imageSgdiskField(t, info, "Partition GUID code"); !strings.HasPrefix(got, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B") {
		t.Errorf("type %s, want EFI system", got)
	}
	first, _ := strconv.ParseInt(strings.Fields(imageSgdiskField(t, info, "First sector"))[0], 10, 64)
	last, _ := strconv.ParseInt(strings.Fields(imageSgdiskField(t, info, "Last sector"))[0], 10, 64)
	if first*512 != 1<<20 || (last-first+1)*512 < 64<<20 {
		t.Errorf("partition %d-%d: want 1 MiB aligned start and at least 64 MiB", first, last)
	}

	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	loc, err := FindESP(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	if loc.Offset != first*512 || loc.Size != (last-first+1)*512 {
		t.Errorf("FindESP %+v, sgdisk says sectors %d-%d", loc, first, last)
	}
	if want := imageSgdiskField(t, info, "Partition unique GUID"); !strings.EqualFold(loc.PartUUID, want) {
		t.Errorf("PARTUUID %s, sgdisk says %s", loc.PartUUID, want)
	}

	// The partition on its own, as the kernel would see it.
	disk, _ := os.ReadFile(img)
	part := filepath.Join(t.TempDir(), "esp.img")
	if err := os.WriteFile(part, disk[loc.Offset:loc.Offset+loc.Size], 0o644); err != nil {
		t.Fatal(err)
	}
	imageTool(t, "fsck.fat", "-n", part)
	if label := strings.TrimSpace(imageTool(t, "fatlabel", part)); label != ESPVolumeLabel {
		t.Errorf("label %q", label)
	}
	for path, want := range map[string][]byte{ESPLoaderPath: uki, ESPMarkerPath: []byte(ESPMarker)} {
		dst := filepath.Join(t.TempDir(), "f")
		imageTool(t, "mcopy", "-i", part, "::"+path, dst)
		if got, _ := os.ReadFile(dst); !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes differ from the %d put there", path, len(got), len(want))
		}
	}
	readme := imageTool(t, "mtype", "-i", part, "::"+ESPReadmePath)
	if !strings.Contains(readme, "wifi.conf") || !strings.Contains(readme, "config.json") {
		t.Errorf("README does not explain the operator files:\n%s", readme)
	}
	// Every directory entry carries the pinned date, not the build's.
	listing := imageTool(t, "mdir", "-i", part, "-/", "::/")
	dates := regexp.MustCompile(`\d{4}-\d{2}-\d{2}`).FindAllString(listing, -1)
	if len(dates) < 5 {
		t.Fatalf("too few entries listed:\n%s", listing)
	}
	for _, d := range dates {
		if d != "2000-01-01" {
			t.Errorf("entry dated %s:\n%s", d, listing)
			break
		}
	}
}

func TestBuildImageReproducible(t *testing.T) {
	uki := imageTestUKI(2, 1<<20)
	a, _ := os.ReadFile(imageBuild(t, uki))
	b, _ := os.ReadFile(imageBuild(t, uki))
	if sha256.Sum256(a) != sha256.Sum256(b) {
		t.Error("same UKI, different image bytes")
	}
	other, _ := os.ReadFile(imageBuild(t, imageTestUKI(3, 1<<20)))
	la, _ := FindESP(bytes.NewReader(a), int64(len(a)))
	lo, _ := FindESP(bytes.NewReader(other), int64(len(other)))
	if la.PartUUID == lo.PartUUID || la.PartUUID == "" {
		t.Errorf("different UKIs share PARTUUID %q", la.PartUUID)
	}
}

func TestBuildImageRefusals(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		opts ImageOptions
	}{
		{"no UKI", ImageOptions{Out: filepath.Join(dir, "a.img")}},
		{"no output", ImageOptions{UKI: []byte("x")}},
		{"ESP below FAT32 minimum", ImageOptions{UKI: []byte("x"), Out: filepath.Join(dir, "b.img"), ESPSize: 32 << 20}},
		{"UKI larger than the ESP", ImageOptions{UKI: make([]byte, 64<<20), Out: filepath.Join(dir, "c.img"), ESPSize: 64 << 20}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := BuildImage(c.opts); err == nil {
				t.Fatal("accepted")
			}
			if c.opts.Out != "" {
				if _, err := os.Stat(c.opts.Out); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("left %s behind", c.opts.Out)
				}
			}
		})
	}
}

// imageTestDisk is an in-memory 4 MiB disk with the given partitions.
func imageTestDisk(t *testing.T, parts []gptPartition) []byte {
	t.Helper()
	const sectors = 8192
	head, tail, err := gptLayout(sectors, [16]byte{1}, parts)
	if err != nil {
		t.Fatal(err)
	}
	d := make([]byte, sectors*512)
	copy(d, head)
	copy(d[len(d)-len(tail):], tail)
	return d
}

var imageESPTypeText = [16]byte{0xC1, 0x2A, 0x73, 0x28, 0xF8, 0x1F, 0x11, 0xD2, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B}

func TestFindESPFaults(t *testing.T) {
	esp := gptPartition{Type: imageESPTypeText, GUID: [16]byte{2}, FirstLBA: 2048, LastLBA: 4095, Name: "ESP"}
	data := gptPartition{Type: [16]byte{9}, GUID: [16]byte{3}, FirstLBA: 4096, LastLBA: 6143, Name: "ESP"}
	good := imageTestDisk(t, []gptPartition{data, esp})
	if loc, err := FindESP(bytes.NewReader(good), int64(len(good))); err != nil || loc.Offset != 2048*512 || loc.Size != 2048*512 {
		t.Fatalf("good disk: %+v %v", loc, err)
	}
	// fixCRCs recomputes both CRCs after an entry edit, so the fault is
	// the edit itself and not a checksum.
	fixCRCs := func(d []byte) []byte {
		binary.LittleEndian.PutUint32(d[512+88:], crc32.ChecksumIEEE(d[1024:1024+128*128]))
		clear(d[512+16 : 512+20])
		binary.LittleEndian.PutUint32(d[512+16:], crc32.ChecksumIEEE(d[512:512+92]))
		return d
	}
	entry := func(d []byte, i int) []byte { return d[1024+128*i:][:128] }
	cases := []struct {
		name  string
		fault func(d []byte) []byte
		want  error
	}{
		{"no signature", func(d []byte) []byte { d[512] = 'X'; return d }, ErrNoGPT},
		{"header CRC", func(d []byte) []byte { d[512+40]++; return d }, ErrNoGPT},
		{"entries CRC", func(d []byte) []byte { entry(d, 1)[60]++; return d }, ErrNoGPT},
		{"truncated", func(d []byte) []byte { return d[:700] }, ErrNoGPT},
		{"entry array outside", func(d []byte) []byte {
			binary.LittleEndian.PutUint64(d[512+72:], 1<<40)
			return fixCRCs(d)
		}, ErrNoGPT},
		{"huge entry count", func(d []byte) []byte {
			binary.LittleEndian.PutUint32(d[512+80:], 1<<30)
			return fixCRCs(d)
		}, ErrNoGPT},
		{"ESP past the end", func(d []byte) []byte {
			binary.LittleEndian.PutUint64(entry(d, 1)[40:], 1<<40)
			return fixCRCs(d)
		}, ErrNoGPT},
		{"no EFI system type", func(d []byte) []byte { clear(entry(d, 1)[:16]); return fixCRCs(d) }, ErrNoESP},
		{"two ESPs", func(d []byte) []byte { copy(entry(d, 0)[:16], entry(d, 1)[:16]); return fixCRCs(d) }, ErrNoESP},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := c.fault(bytes.Clone(good))
			if _, err := FindESP(bytes.NewReader(d), int64(len(d))); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestFindESPUnnamedOnly(t *testing.T) {
	d := imageTestDisk(t, []gptPartition{{Type: imageESPTypeText, GUID: [16]byte{2}, FirstLBA: 2048, LastLBA: 4095, Name: "EFI system"}})
	if loc, err := FindESP(bytes.NewReader(d), int64(len(d))); err != nil || loc.Offset != 2048*512 {
		t.Fatalf("single unnamed ESP: %+v %v", loc, err)
	}
}

func FuzzFindESP(f *testing.F) {
	head, tail, err := gptLayout(4096, [16]byte{1}, []gptPartition{{Type: imageESPTypeText, GUID: [16]byte{2}, FirstLBA: 2048, LastLBA: 3000, Name: "ESP"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(head, int64(4096*512))
	_ = tail
	f.Fuzz(func(t *testing.T, d []byte, size int64) {
		if size < 0 || size > 1<<40 {
			return
		}
		loc, err := FindESP(bytes.NewReader(d), size)
		if err == nil && (loc.Offset < 0 || loc.Size <= 0 || loc.Offset+loc.Size > size) {
			t.Fatalf("location %+v outside a disk of %d", loc, size)
		}
	})
}
