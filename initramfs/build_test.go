package initramfs

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"inert/appliance"
	"inert/appliance/profiles"
)

// buildFixture is a fake repository with a payload, and a manifest (the demo
// profile) pointing at it.
type buildFixture struct {
	repo     string
	manifest map[string]any
	opts     Options
}

func newBuildFixture(t testing.TB) *buildFixture {
	t.Helper()
	repo := t.TempDir()
	write := func(p, content string, mode fs.FileMode) {
		full := filepath.Join(repo, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(full, mode)
	}
	write("build/bin/inert-demo", "demo service binary", 0o755)
	write("release/bin/hb", "#!/bin/sh\nexec erl\n", 0o750)
	write("release/lib/app/ebin/app.beam", "beam", 0o640)
	write("release/etc/config", "x=1\n", 0o600)
	os.Symlink("bin/hb", filepath.Join(repo, "release/hb-link"))
	os.MkdirAll(filepath.Join(repo, "release/empty"), 0o700)

	raw, err := profiles.Manifest("demo")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m["payload"] = []any{
		map[string]any{"src": "build/bin/inert-demo", "dst": "/usr/lib/inert/demo/inert-demo", "mode": 0o755},
		map[string]any{"src": "$TEST_RELEASE", "dst": "/usr/lib/hyperbeam"},
	}
	m["binaries"] = []any{"/usr/bin/zstd"}
	f := &buildFixture{repo: repo, manifest: m}
	f.opts = Options{
		InitBinary: elfStaticBinary(t),
		RepoRoot:   repo,
		Kernel:     modulesDebianKernel(t),
		Getenv: func(v string) string {
			if v == "TEST_RELEASE" {
				return filepath.Join(repo, "release")
			}
			return ""
		},
	}
	f.opts.Manifest = f.manifestBytes(t)
	return f
}

func (f *buildFixture) manifestBytes(t testing.TB) []byte {
	b, err := json.MarshalIndent(f.manifest, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuildContents(t *testing.T) {
	old := cpioUmask(0)
	defer cpioUmask(old)
	f := newBuildFixture(t)
	f.opts.Compression = CompressNone // compressions are tested in TestCompress
	res, err := Build(f.opts)
	if err != nil {
		t.Fatal(err)
	}
	raw := res.Archive
	if len(raw) != res.Uncompressed {
		t.Errorf("Uncompressed = %d, archive has %d", res.Uncompressed, len(raw))
	}
	dir := cpioExtract(t, raw)
	same := func(inImage, onHost string) {
		t.Helper()
		got, err := os.ReadFile(filepath.Join(dir, inImage))
		want, _ := os.ReadFile(onHost)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s (%v)", inImage, onHost, err)
		}
	}
	same("init", f.opts.InitBinary)
	same("usr/lib/inert/demo/inert-demo", filepath.Join(f.repo, "build/bin/inert-demo"))
	same("usr/lib/hyperbeam/lib/app/ebin/app.beam", filepath.Join(f.repo, "release/lib/app/ebin/app.beam"))
	same("usr/bin/zstd", "/usr/bin/zstd")
	for _, lib := range elfLddClosure(t, "/usr/bin/zstd") {
		same(lib, lib)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, appliance.ManifestPath)); !bytes.Equal(b, f.opts.Manifest) {
		t.Error("the manifest in the image is not the bytes given")
	}
	modes := map[string]fs.FileMode{
		"init":                          0o755,
		"tmp":                           fs.ModeDir | fs.ModeSticky | 0o777,
		"proc":                          fs.ModeDir | 0o555,
		"usr/lib/hyperbeam/bin/hb":      0o750,
		"usr/lib/hyperbeam/etc/config":  0o600,
		"usr/lib/hyperbeam/empty":       fs.ModeDir | 0o700,
		"usr/lib/hyperbeam/hb-link":     fs.ModeSymlink | 0o777,
		"etc/inert/appliance.json":      0o444,
		"usr/lib/inert/demo/inert-demo": 0o755,
	}
	for p, want := range modes {
		if st, err := os.Lstat(filepath.Join(dir, p)); err != nil || st.Mode() != want {
			t.Errorf("%s: mode %v (err %v), want %v", p, st.Mode(), err, want)
		}
	}
	if target, _ := os.Readlink(filepath.Join(dir, "usr/lib/hyperbeam/hb-link")); target != "bin/hb" {
		t.Errorf("hb-link -> %q", target)
	}
	k := f.opts.Kernel
	for _, m := range []string{"modules.dep", "modules.alias", "modules.builtin", "kernel/fs/ext4/ext4.ko", "kernel/drivers/usb/storage/usb-storage.ko"} {
		if _, err := os.Stat(filepath.Join(dir, "lib/modules", k.Version, m)); err != nil {
			t.Errorf("module tree: %v", err)
		}
	}
	// Device nodes, from GNU cpio's listing.
	cmd := exec.Command("cpio", "-itv", "--quiet")
	cmd.Stdin = bytes.NewReader(raw)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"dev/console": "crw------- 5, 1", "dev/null": "crw-rw-rw- 1, 3"}
	for _, line := range strings.Split(string(out), "\n") {
		fl := strings.Fields(line)
		if len(fl) > 5 {
			if w, ok := want[fl[len(fl)-1]]; ok && strings.Join([]string{fl[0], fl[4], fl[5]}, " ") == w {
				delete(want, fl[len(fl)-1])
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("device nodes missing or wrong: %v\n%s", want, out)
	}
	if res.Files != strings.Count(string(out), "\n") {
		t.Errorf("Files = %d, cpio lists %d entries", res.Files, strings.Count(string(out), "\n"))
	}
}

var buildEpoch = time.Unix(0, 0)

func TestBuildIsReproducible(t *testing.T) {
	f := newBuildFixture(t)
	a, err := Build(f.opts)
	if err != nil {
		t.Fatal(err)
	}
	// Touch every payload file: mtimes must not matter.
	filepath.WalkDir(f.repo, func(p string, d fs.DirEntry, err error) error {
		os.Chtimes(p, buildEpoch, buildEpoch)
		return nil
	})
	b, err := Build(f.opts)
	if err != nil {
		t.Fatal(err)
	}
	if a.SHA256 != b.SHA256 || !bytes.Equal(a.Archive, b.Archive) {
		t.Fatalf("two builds differ: %s vs %s", a.SHA256, b.SHA256)
	}
	cmd := exec.Command("sha256sum")
	cmd.Stdin = bytes.NewReader(a.Archive)
	if out, err := cmd.Output(); err != nil || !strings.HasPrefix(string(out), a.SHA256+" ") {
		t.Errorf("SHA256 %s, sha256sum says %s", a.SHA256, out)
	}
	cmd = exec.Command("zstd", "-t")
	cmd.Stdin = bytes.NewReader(a.Archive)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("zstd -t: %v %s", err, out)
	}
}

func TestBuildFaults(t *testing.T) {
	cases := []struct {
		name   string
		change func(t *testing.T, f *buildFixture)
		want   error
		naming string
	}{
		{"unknown manifest field", func(t *testing.T, f *buildFixture) { f.manifest["extra"] = 1 }, appliance.ErrManifest, "extra"},
		{"bad manifest value", func(t *testing.T, f *buildFixture) { f.manifest["run_dir"] = "/tmp/x" }, appliance.ErrManifest, "run_dir"},
		{"dynamic init", func(t *testing.T, f *buildFixture) { f.opts.InitBinary = "/usr/bin/zstd" }, ErrNotStatic, "/usr/bin/zstd"},
		{"init is a script", func(t *testing.T, f *buildFixture) {
			f.opts.InitBinary = filepath.Join(f.repo, "release/bin/hb")
		}, ErrNotELF, "hb"},
		{"missing payload", func(t *testing.T, f *buildFixture) { os.Remove(filepath.Join(f.repo, "build/bin/inert-demo")) }, ErrPayloadMissing, "inert-demo"},
		{"unset variable", func(t *testing.T, f *buildFixture) { f.opts.Getenv = func(string) string { return "" } }, ErrPayloadMissing, "$TEST_RELEASE"},
		{"special file in payload", func(t *testing.T, f *buildFixture) {
			if err := exec.Command("mkfifo", filepath.Join(f.repo, "release/fifo")).Run(); err != nil {
				t.Fatal(err)
			}
		}, ErrBuild, "fifo"},
		{"missing module", func(t *testing.T, f *buildFixture) { f.manifest["modules"] = []any{"vfat", "not_a_driver"} }, ErrModuleMissing, "not_a_driver"},
		{"modules without kernel", func(t *testing.T, f *buildFixture) { f.opts.Kernel.ModulesDir = "" }, ErrBuild, "kernel"},
		{"missing firmware", func(t *testing.T, f *buildFixture) { f.manifest["firmware"] = []any{"no/such.bin"} }, ErrFirmwareMissing, "no/such.bin"},
		{"missing binary", func(t *testing.T, f *buildFixture) { f.manifest["binaries"] = []any{"/usr/bin/not-installed"} }, os.ErrNotExist, "not-installed"},
		{"payload over /init", func(t *testing.T, f *buildFixture) {
			f.manifest["payload"] = []any{map[string]any{"src": "build/bin/inert-demo", "dst": "/init"}}
		}, ErrCPIOConflict, "/init"},
		{"bad compression", func(t *testing.T, f *buildFixture) { f.opts.Compression = "bzip2" }, ErrCompression, "bzip2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newBuildFixture(t)
			tc.change(t, f)
			f.opts.Manifest = f.manifestBytes(t)
			_, err := Build(f.opts)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.naming) {
				t.Fatalf("err = %v, want %v naming %q", err, tc.want, tc.naming)
			}
		})
	}
}

// BenchmarkBuild builds the demo image with the real kernel's modules and
// reports its size.
func BenchmarkBuild(b *testing.B) {
	f := newBuildFixture(b)
	var res *Result
	for b.Loop() {
		var err error
		if res, err = Build(f.opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(res.Archive)), "bytes")
	b.ReportMetric(float64(res.Uncompressed), "cpio-bytes")
	b.ReportMetric(float64(len(res.Modules)), "modules")
}
