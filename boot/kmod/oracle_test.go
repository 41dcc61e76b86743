package kmod

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// debianModules finds the installed Debian kernel's module tree (deps.sh
// installs linux-image-amd64); the host's own kernel is irrelevant here.
func debianModules(t *testing.T) (release, dir string) {
	t.Helper()
	deps, _ := filepath.Glob("/lib/modules/*/modules.dep.bin")
	slices.Sort(deps)
	if len(deps) == 0 {
		t.Fatal("no /lib/modules/*/modules.dep.bin: install linux-image-amd64 (scripts/deps.sh)")
	}
	dir = filepath.Dir(deps[len(deps)-1])
	return filepath.Base(dir), dir
}

// rootWithModules makes a root whose lib/modules/<release> is the real tree.
func rootWithModules(t *testing.T, release, dir string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "lib/modules"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(root, "lib/modules", release)); err != nil {
		t.Fatal(err)
	}
	return root
}

// modprobe runs the real kmod tool without any host configuration.
func modprobe(t *testing.T, root, release string, args ...string) []string {
	t.Helper()
	cmd := exec.Command("modprobe", append([]string{"-C", "/dev/null", "-d", root, "-S", release}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil && !strings.Contains(errb.String(), "not found") {
		t.Fatalf("modprobe %v: %v: %s", args, err, errb.String())
	}
	return strings.Fields(out.String())
}

// The load order for each module inert ships must be modprobe's.
func TestLoadOrderMatchesModprobe(t *testing.T) {
	release, dir := debianModules(t)
	root := rootWithModules(t, release, dir)
	names := []string{"xhci_pci", "usb_storage", "uas", "sd_mod", "vfat", "nls_cp437", "virtio_pci",
		"virtio_blk", "virtio_net", "virtio_console", "e1000e", "efivarfs", "configfs", "sev-guest",
		"dm_crypt", "ext4", "btrfs", "iwlmvm", "fs-vfat"}
	for _, name := range names {
		// modprobe repeats a module each time a soft dependency reaches it;
		// it inserts it once.
		var want []string
		fields := modprobe(t, root, release, "--show-depends", name)
		for i := 0; i+1 < len(fields); i += 2 {
			if m, _ := ModuleName(fields[i+1]); fields[i] == "insmod" && !slices.Contains(want, m) {
				want = append(want, m)
			}
		}
		if len(want) == 0 {
			t.Fatalf("modprobe gave no insmod lines for %s", name)
		}
		l := &recordingLoader{}
		loaded, err := (&Tree{Root: root, Release: release, Loader: l}).Load(context.Background(), []string{name})
		if err != nil {
			t.Fatalf("Load(%s): %v", name, err)
		}
		if !slices.Equal(loaded, want) {
			t.Errorf("Load(%s) = %v\nmodprobe: %v", name, loaded, want)
		}
	}
}

// Alias matching must agree with modprobe --resolve-alias (glibc fnmatch) on
// modaliases made from real patterns and on this machine's own devices.
func TestMatchAgreesWithModprobe(t *testing.T) {
	release, dir := debianModules(t)
	root := rootWithModules(t, release, dir)
	ix, err := ReadIndex(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	var probes []string
	for i := 0; i < len(ix.aliases); i += len(ix.aliases) / 150 {
		probes = append(probes, instantiate(ix.aliases[i].pattern, ""), instantiate(ix.aliases[i].pattern, "0Z"))
	}
	host, err := Modaliases(os.DirFS("/"), "sys/devices")
	if err == nil {
		probes = append(probes, host...)
	}
	probes = append(probes, "pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30",
		"usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00", "virtio:d00000002v00001AF4")
	matched := 0
	for _, p := range probes {
		var want []string
		for _, m := range modprobe(t, root, release, "-R", p) {
			if m = Normalize(m); ix.Has(m) && !slices.Contains(want, m) {
				want = append(want, m)
			}
		}
		slices.Sort(want)
		got := ix.Match(p)
		if !slices.Equal(got, want) {
			t.Errorf("Match(%q) = %v, modprobe -R: %v", p, got, want)
		}
		if len(got) > 0 {
			matched++
		}
	}
	if matched < len(probes)/2 {
		t.Errorf("only %d of %d probes matched anything: the probes are not testing much", matched, len(probes))
	}
}

// instantiate turns an alias pattern into a string it should match: each '*'
// becomes star, '?' becomes 'Q', and a class its first member.
func instantiate(pattern, star string) string {
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '*':
			b.WriteString(star)
		case '?':
			b.WriteByte('Q')
		case '[':
			end := strings.IndexByte(pattern[i+1:], ']')
			if end <= 0 || pattern[i+1] == '!' || pattern[i+1] == '^' {
				b.WriteByte(c)
				continue
			}
			b.WriteByte(pattern[i+1])
			i += end + 1
		case '\\':
			if i+1 < len(pattern) {
				i++
				b.WriteByte(pattern[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// globMatch must be fnmatch(3): GNU find -name is the oracle.
func TestGlobMatchAgreesWithFind(t *testing.T) {
	names := []string{"abc", "a-c", "aXc", "a]c", "a!c", "a^c", "a[c", "a*c", "a\\c", "ac", "abbc",
		"x", "usb:v13FDp3940d0100dc00", "usb:v13FDp3940d0300dc00", "pci:v00008086d*", "bc0Csc03i30"}
	patterns := []string{"a?c", "a*c", "*", "a[b-d]c", "a[!b]c", "a[^b]c", "a[]]c", "a[!]]c", "a[-x]c",
		"a[x-]c", "a\\*c", "a[c", "a[\\]]c", "*b*", "a*b*c", "[a-c]*", "usb:v13FDp3940d0[0-2]*dc*",
		"*bc0Csc03i30*", "pci:v00008086d\\*", "[z-a]*", "a[[]c", "?", "a\\c", "a\\\\c", "*[0-2]00dc*"}
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range patterns {
		out, err := exec.Command("find", dir, "-mindepth", "1", "-name", p, "-printf", "%f\n").Output()
		if err != nil {
			t.Fatalf("find -name %q: %v", p, err)
		}
		want := strings.Fields(string(out))
		var got []string
		for _, n := range names {
			if globMatch(p, n) {
				got = append(got, n)
			}
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("pattern %q: globMatch %q, find %q", p, got, want)
		}
	}
}
