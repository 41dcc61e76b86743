package initramfs

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"inert/appliance"
	"inert/appliance/profiles"
	"inert/boot/kmod"
	"inert/kernel"
)

func modulesDebianKernel(t testing.TB) kernel.Kernel {
	t.Helper()
	k, err := kernel.Installed("/boot", "/lib/modules")
	if err != nil {
		t.Fatalf("%v (scripts/deps.sh installs linux-image-amd64)", err)
	}
	return k
}

// cpioWriteTreeFiles writes the regular files and directories of tr under dir.
func cpioWriteTreeFiles(t *testing.T, tr *Tree, dir string) {
	t.Helper()
	for _, p := range tr.Paths() {
		e, _ := tr.Lookup(p)
		full := filepath.Join(dir, p)
		switch {
		case e.Mode.IsDir():
			os.MkdirAll(full, 0o755)
		case e.Mode.IsRegular():
			os.MkdirAll(filepath.Dir(full), 0o755)
			if err := os.WriteFile(full, e.Data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// modulesIndexLines returns the non-comment lines of an index file, sorted.
func modulesIndexLines(t *testing.T, p string) []string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && l[0] != '#' {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

func modulesManifestModules(t testing.TB) []string {
	b, err := profiles.Manifest("hyperbeam")
	if err != nil {
		t.Fatal(err)
	}
	m, err := appliance.ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	return m.Modules
}

// depmod, run on the modules we ship, must write the same filtered index.
func TestAddModulesAgreesWithDepmod(t *testing.T) {
	k := modulesDebianKernel(t)
	tr := NewTree()
	included, err := AddModules(tr, k, modulesManifestModules(t))
	if err != nil {
		t.Fatal(err)
	}
	ours := t.TempDir()
	cpioWriteTreeFiles(t, tr, ours)
	ref := t.TempDir()
	cpioWriteTreeFiles(t, tr, ref)
	modDir := filepath.Join(ref, "lib/modules", k.Version)
	for _, f := range []string{"modules.dep", "modules.alias", "modules.softdep"} {
		os.Remove(filepath.Join(modDir, f))
	}
	if out, err := exec.Command("depmod", "-b", ref, k.Version).CombinedOutput(); err != nil {
		t.Fatalf("depmod: %v: %s", err, out)
	}
	for _, f := range []string{"modules.dep", "modules.alias", "modules.softdep"} {
		got := modulesIndexLines(t, filepath.Join(ours, "lib/modules", k.Version, f))
		want := modulesIndexLines(t, filepath.Join(modDir, f))
		if f == "modules.dep" {
			// depmod may order dependencies of equal depth differently in
			// a smaller tree; what must agree is each module's set.
			got, want = modulesDepSets(got), modulesDepSets(want)
		}
		if f == "modules.softdep" {
			// depmod writes softdeps of every module it sees; we keep those
			// of included modules, which is all of them here.
			if !slices.Equal(got, want) {
				t.Errorf("%s:\nours   %q\ndepmod %q", f, got, want)
			}
			continue
		}
		if !slices.Equal(got, want) {
			for i := range min(len(got), len(want)) {
				if got[i] != want[i] {
					t.Errorf("%s differs from depmod's at line %d:\nours   %s\ndepmod %s", f, i, got[i], want[i])
					break
				}
			}
			t.Errorf("%s differs from depmod's (%d vs %d lines)", f, len(got), len(want))
		}
	}
	// Every shipped module is loadable from the shipped tree alone, and
	// ext4 brings its crc32c.
	for _, want := range []string{"ext4", "crc32c_generic", "usb_storage", "scsi_mod"} {
		if !slices.Contains(included, want) {
			t.Errorf("closure %v lacks %s", included, want)
		}
	}
	l := &modulesRecordingLoader{}
	loaded, err := (&kmod.Tree{Root: ours, Release: k.Version, Loader: l}).Load(context.Background(), modulesManifestModules(t))
	if err != nil {
		t.Fatalf("loading from the shipped tree: %v", err)
	}
	if !slices.Equal(loaded, included) {
		t.Errorf("boot would load %v, build included %v", loaded, included)
	}
}

// modulesDepSets rewrites "m.ko: a.ko b.ko" lines with their dependencies sorted.
func modulesDepSets(lines []string) []string {
	var out []string
	for _, l := range lines {
		m, deps, _ := strings.Cut(l, ":")
		f := strings.Fields(deps)
		slices.Sort(f)
		out = append(out, m+": "+strings.Join(f, " "))
	}
	return out
}

type modulesRecordingLoader struct{ names []string }

func (l *modulesRecordingLoader) Init(f *os.File) error {
	n, _ := kmod.ModuleName(f.Name())
	l.names = append(l.names, n)
	return nil
}

func TestAddModulesFaults(t *testing.T) {
	k := modulesDebianKernel(t)
	fake := func(t *testing.T, dep string, files ...string) kernel.Kernel {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644)
		for _, f := range files {
			os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755)
			os.WriteFile(filepath.Join(dir, f), []byte("ko"), 0o644)
		}
		return kernel.Kernel{Version: "6.1.0-test", ModulesDir: dir}
	}
	cases := []struct {
		name   string
		k      func(t *testing.T) kernel.Kernel
		mods   []string
		naming string
		want   error
	}{
		{"unknown module", func(*testing.T) kernel.Kernel { return k }, []string{"vfat", "no_such_driver"}, "no_such_driver", ErrModuleMissing},
		{"module file missing", func(t *testing.T) kernel.Kernel {
			return fake(t, "kernel/a.ko: kernel/b.ko\nkernel/b.ko:\n", "kernel/a.ko")
		}, []string{"a"}, "b", ErrModuleMissing},
		{"dependency not in modules.dep", func(t *testing.T) kernel.Kernel {
			return fake(t, "kernel/a.ko: kernel/c.ko\n", "kernel/a.ko")
		}, []string{"a"}, "c", ErrModuleMissing},
		{"no modules.dep", func(t *testing.T) kernel.Kernel {
			return kernel.Kernel{Version: "x", ModulesDir: t.TempDir()}
		}, []string{"a"}, "modules.dep", kmod.ErrIndex},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := AddModules(NewTree(), tc.k(t), tc.mods)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.naming) {
				t.Fatalf("err = %v, want %v naming %s", err, tc.want, tc.naming)
			}
		})
	}
}

func TestAddFirmware(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "iwlwifi"), 0o755)
	os.WriteFile(filepath.Join(root, "iwlwifi/real.ucode"), []byte("blob"), 0o644)
	os.Symlink("real.ucode", filepath.Join(root, "iwlwifi/link.ucode"))
	tr := NewTree()
	if err := AddFirmware(tr, root, []string{"iwlwifi/real.ucode", "iwlwifi/link.ucode"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/lib/firmware/iwlwifi/real.ucode", "/lib/firmware/iwlwifi/link.ucode"} {
		if e, ok := tr.Lookup(p); !ok || string(e.Data) != "blob" || !e.Mode.IsRegular() {
			t.Errorf("%s: %+v", p, e)
		}
	}
	for _, bad := range []string{"iwlwifi/missing.ucode", "../etc/passwd", "/etc/passwd", "iwlwifi/./real.ucode"} {
		err := AddFirmware(NewTree(), root, []string{bad})
		if !errors.Is(err, ErrFirmwareMissing) || !strings.Contains(err.Error(), bad) {
			t.Errorf("%s: err = %v, want ErrFirmwareMissing naming it", bad, err)
		}
	}
}
