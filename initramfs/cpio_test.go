package initramfs

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// cpioSampleTree has every kind of entry and sizes that exercise padding.
func cpioSampleTree(t *testing.T) *Tree {
	t.Helper()
	tr := NewTree()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(tr.Dir("/tmp", 0o777|fs.ModeSticky))
	must(tr.Dir("/etc/inert", 0o750))
	must(tr.File("/init", []byte("\x7fELF pretend init"), 0o755))
	must(tr.File("/etc/inert/appliance.json", []byte("{}\n"), 0o444))
	must(tr.File("/etc/empty", nil, 0o600))
	for n := 0; n < 9; n++ { // names and data of every length mod 4
		must(tr.File(fmt.Sprintf("/usr/lib/x/%s", strings.Repeat("n", n+1)), bytes.Repeat([]byte{byte('a' + n)}, n), 0o644))
	}
	must(tr.File("/usr/lib/deep/a/b/c/d/file-with-a-much-longer-name.so.1.2.3", []byte("lib"), 0o644))
	must(tr.Symlink("/usr/lib/x/link", "nnn"))
	must(tr.Symlink("/bin", "usr/bin"))
	return tr
}

func cpioBytes(t *testing.T, tr *Tree) []byte {
	t.Helper()
	var b bytes.Buffer
	n, err := tr.WriteCPIO(&b)
	if err != nil {
		t.Fatal(err)
	}
	if int(n) != b.Len() || n%4 != 0 {
		t.Fatalf("wrote %d bytes, buffer has %d (newc is 4-aligned)", n, b.Len())
	}
	return b.Bytes()
}

// cpioExtract unpacks an archive with GNU cpio, leaving device nodes out
// (creating them needs root).
func cpioExtract(t *testing.T, archive []byte) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("cpio", "-i", "-d", "-m", "--no-absolute-filenames", "--quiet", "-D", dir, "-f", "dev/console", "dev/null")
	cmd.Stdin = bytes.NewReader(archive)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v: %s", err, out)
	}
	return dir
}

// cpioAssertTreeOnDisk checks that dir holds exactly tr (device nodes aside).
func cpioAssertTreeOnDisk(t *testing.T, tr *Tree, dir string) {
	t.Helper()
	var onDisk []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			onDisk = append(onDisk, "/"+filepath.ToSlash(rel))
		}
		return nil
	})
	var want []string
	for _, p := range tr.Paths() {
		e, _ := tr.Lookup(p)
		if e.Mode&fs.ModeDevice == 0 {
			want = append(want, p)
		}
	}
	slices.Sort(onDisk)
	if !slices.Equal(onDisk, want) {
		t.Fatalf("extracted %v\nwant %v", onDisk, want)
	}
	for _, p := range want {
		e, _ := tr.Lookup(p)
		full := filepath.Join(dir, p)
		st, err := os.Lstat(full)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != e.Mode {
			t.Errorf("%s: mode %v, want %v", p, st.Mode(), e.Mode)
		}
		switch {
		case e.Mode&fs.ModeSymlink != 0:
			if target, _ := os.Readlink(full); target != string(e.Data) {
				t.Errorf("%s -> %q, want %q", p, target, e.Data)
			}
		case e.Mode.IsRegular():
			if b, _ := os.ReadFile(full); !bytes.Equal(b, e.Data) {
				t.Errorf("%s: content %q, want %q", p, b, e.Data)
			}
		}
	}
}

func TestWriteCPIOExtractsWithGNUCpio(t *testing.T) {
	tr := cpioSampleTree(t)
	old := cpioUmask(0)
	defer cpioUmask(old)
	cpioAssertTreeOnDisk(t, tr, cpioExtract(t, cpioBytes(t, tr)))
}

// cpioNewcHeader is a second, independent reader of the fields the kernel uses.
type cpioNewcHeader struct {
	name                        string
	ino, mode, uid, gid, nlink  uint64
	mtime, size, rmajor, rminor uint64
}

func cpioParseNewc(t *testing.T, b []byte) []cpioNewcHeader {
	t.Helper()
	var hs []cpioNewcHeader
	for off := 0; ; {
		if off+110 > len(b) || string(b[off:off+6]) != "070701" {
			t.Fatalf("no newc magic at %d", off)
		}
		f := func(i int) uint64 {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		h := cpioNewcHeader{ino: f(0), mode: f(1), uid: f(2), gid: f(3), nlink: f(4), mtime: f(5), size: f(6), rmajor: f(9), rminor: f(10)}
		namesize := int(f(11))
		h.name = string(b[off+110 : off+110+namesize-1])
		off = (off + 110 + namesize + 3) &^ 3
		off = (off + int(h.size) + 3) &^ 3
		hs = append(hs, h)
		if h.name == "TRAILER!!!" {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return hs
		}
	}
}

func TestWriteCPIOHeaders(t *testing.T) {
	tr := cpioSampleTree(t)
	if err := tr.CharDev("/dev/console", 0o600, 5, 1); err != nil {
		t.Fatal(err)
	}
	hs := cpioParseNewc(t, cpioBytes(t, tr))
	seen := map[string]bool{}
	for i, h := range hs[:len(hs)-1] {
		if h.ino != uint64(i+1) || h.uid != 0 || h.gid != 0 || h.mtime != 0 {
			t.Errorf("%s: ino %d uid %d gid %d mtime %d; want ino %d and zeros", h.name, h.ino, h.uid, h.gid, h.mtime, i+1)
		}
		wantLinks := uint64(1)
		if h.mode&0o170000 == 0o040000 {
			wantLinks = 2
		}
		if h.nlink != wantLinks {
			t.Errorf("%s: nlink %d, want %d", h.name, h.nlink, wantLinks)
		}
		if parent := path.Dir(h.name); parent != "." && !seen[parent] {
			t.Errorf("%s comes before its parent %s", h.name, parent)
		}
		if i > 0 && hs[i-1].name >= h.name {
			t.Errorf("%s after %s: not sorted", h.name, hs[i-1].name)
		}
		seen[h.name] = true
	}
	// GNU cpio's listing is the oracle for the device node.
	cmd := exec.Command("cpio", "-itv", "--quiet")
	cmd.Stdin = bytes.NewReader(cpioBytes(t, tr))
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasSuffix(line, " dev/console") {
			f := strings.Fields(line)
			found = f[0] == "crw-------" && f[4] == "5," && f[5] == "1"
		}
	}
	if !found {
		t.Errorf("cpio -itv does not show dev/console as c 5,1:\n%s", out)
	}
}

func TestWriteCPIOIsReproducible(t *testing.T) {
	a := cpioBytes(t, cpioSampleTree(t))
	// Insertion order must not matter.
	tr := NewTree()
	for _, p := range slices.Backward(cpioSampleTree(t).Paths()) {
		e, _ := cpioSampleTree(t).Lookup(p)
		switch {
		case e.Mode.IsDir():
			tr.Dir(p, e.Mode)
		case e.Mode&fs.ModeSymlink != 0:
			tr.Symlink(p, string(e.Data))
		default:
			tr.File(p, e.Data, e.Mode)
		}
	}
	if b := cpioBytes(t, tr); !bytes.Equal(a, b) {
		t.Fatal("same tree, different archive")
	}
}

func TestTreeRefusals(t *testing.T) {
	cases := []struct {
		name string
		add  func(*Tree) error
		want error
	}{
		{"relative path", func(tr *Tree) error { return tr.File("etc/x", nil, 0o644) }, ErrCPIOPath},
		{"unclean path", func(tr *Tree) error { return tr.File("/etc/../x", nil, 0o644) }, ErrCPIOPath},
		{"root", func(tr *Tree) error { return tr.Dir("/", 0o755) }, ErrCPIOPath},
		{"trailing slash", func(tr *Tree) error { return tr.Dir("/etc/", 0o755) }, ErrCPIOPath},
		{"file over directory", func(tr *Tree) error { return tr.File("/etc", nil, 0o644) }, ErrCPIOConflict},
		{"directory over file", func(tr *Tree) error { return tr.Dir("/init", 0o755) }, ErrCPIOConflict},
		{"file under a file", func(tr *Tree) error { return tr.File("/init/x", nil, 0o644) }, ErrCPIOConflict},
		{"other content", func(tr *Tree) error { return tr.File("/init", []byte("other"), 0o755) }, ErrCPIOConflict},
		{"other mode", func(tr *Tree) error { return tr.File("/init", []byte("init"), 0o700) }, ErrCPIOConflict},
		{"empty symlink", func(tr *Tree) error { return tr.Symlink("/l", "") }, ErrCPIOPath},
		{"same file again is fine", func(tr *Tree) error { return tr.File("/init", []byte("init"), 0o755) }, nil},
		{"same directory again is fine", func(tr *Tree) error { return tr.Dir("/etc", 0o700) }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTree()
			if err := tr.File("/init", []byte("init"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := tr.Dir("/etc", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := tc.add(tr); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if e, _ := tr.Lookup("/init"); string(e.Data) != "init" || e.Mode != 0o755 {
				t.Errorf("/init changed: %+v", e)
			}
		})
	}
}

func TestImplicitParentTakesExplicitMode(t *testing.T) {
	tr := NewTree()
	tr.File("/a/b/c", nil, 0o644)
	tr.Dir("/a/b", 0o700)
	tr.Dir("/a/b", 0o755) // the first explicit mode stays
	if e, _ := tr.Lookup("/a/b"); e.Mode != fs.ModeDir|0o700 {
		t.Fatalf("/a/b mode %v", e.Mode)
	}
	if e, _ := tr.Lookup("/a"); e.Mode != fs.ModeDir|0o755 {
		t.Fatalf("/a mode %v", e.Mode)
	}
}

func TestCompress(t *testing.T) {
	raw := cpioBytes(t, cpioSampleTree(t))
	for _, tc := range []struct {
		comp string
		tool []string
	}{{CompressZstd, []string{"zstd", "-dc"}}, {CompressGzip, []string{"gzip", "-dc"}}, {CompressNone, []string{"cat"}}} {
		t.Run(tc.comp, func(t *testing.T) {
			a, err := Compress(tc.comp, raw)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := Compress(tc.comp, raw)
			if !bytes.Equal(a, b) {
				t.Fatal("compressing twice gave different bytes")
			}
			cmd := exec.Command(tc.tool[0], tc.tool[1:]...)
			cmd.Stdin = bytes.NewReader(a)
			out, err := cmd.Output()
			if err != nil || !bytes.Equal(out, raw) {
				t.Fatalf("%v does not give the archive back (err %v)", tc.tool, err)
			}
			if tc.comp == CompressGzip && (hex.EncodeToString(a[4:8]) != "00000000" || a[3]&0x08 != 0) {
				t.Errorf("gzip header has an mtime or a name: % x", a[:10])
			}
		})
	}
	if _, err := Compress("lz4", raw); !errors.Is(err, ErrCompression) {
		t.Fatalf("lz4: err = %v, want ErrCompression", err)
	}
}

// cpioUmask lets extraction tests see the modes the archive carries.
func cpioUmask(m int) int { return syscall.Umask(m) }
