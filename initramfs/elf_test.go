package initramfs

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// elfLddClosure parses ldd's answer: the oracle for what the loader maps.
func elfLddClosure(t *testing.T, bin string) []string {
	t.Helper()
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", bin, err)
	}
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			libs = append(libs, f[2])
		case len(f) == 2 && strings.HasPrefix(f[0], "/"):
			libs = append(libs, f[0]) // the interpreter
		}
	}
	slices.Sort(libs)
	return libs
}

func TestELFClosureAgreesWithLdd(t *testing.T) {
	for _, bin := range []string{"/usr/sbin/mke2fs", "/usr/bin/zstd", "/usr/bin/qemu-system-x86_64"} {
		t.Run(filepath.Base(bin), func(t *testing.T) {
			tr := NewTree()
			libs, err := AddELF(tr, "/", bin)
			if err != nil {
				t.Fatal(err)
			}
			got := slices.Sorted(slices.Values(libs))
			if want := elfLddClosure(t, bin); !slices.Equal(got, want) {
				t.Fatalf("closure %v\nldd     %v", got, want)
			}
			for _, p := range append(libs, bin) {
				e, ok := tr.Lookup(p)
				real, _ := os.ReadFile(p)
				if !ok || !e.Mode.IsRegular() || !bytes.Equal(e.Data, real) {
					t.Errorf("%s is not in the tree as the real file", p)
				}
			}
		})
	}
}

// elfStaticBinary writes a minimal static x86-64 executable (one PT_LOAD, no
// PT_INTERP; it just calls exit(0)): a stand-in for the inert binary.
func elfStaticBinary(t testing.TB) string {
	t.Helper()
	const base = 0x400000
	code := []byte{0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05} // mov eax,60; xor edi,edi; syscall
	var b bytes.Buffer
	le := binary.LittleEndian
	hdr := elf.Header64{
		Ident:     [16]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)},
		Type:      uint16(elf.ET_EXEC),
		Machine:   uint16(elf.EM_X86_64),
		Version:   uint32(elf.EV_CURRENT),
		Entry:     base + 64 + 56,
		Phoff:     64,
		Ehsize:    64,
		Phentsize: 56,
		Phnum:     1,
	}
	size := uint64(64 + 56 + len(code))
	prog := elf.Prog64{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X), Vaddr: base, Paddr: base,
		Filesz: size, Memsz: size, Align: 0x1000}
	binary.Write(&b, le, hdr)
	binary.Write(&b, le, prog)
	b.Write(code)
	p := filepath.Join(t.TempDir(), "init")
	if err := os.WriteFile(p, b.Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestELFClosureFaults(t *testing.T) {
	// A root with zstd and only some of its libraries.
	root := t.TempDir()
	copyInto := func(p string) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(root, p), b, 0o755)
	}
	copyInto("/usr/bin/zstd")
	copyInto("/lib64/ld-linux-x86-64.so.2")
	copyInto("/lib/x86_64-linux-gnu/libc.so.6")
	copyInto("/lib/x86_64-linux-gnu/libz.so.1")
	os.WriteFile(filepath.Join(root, "script"), []byte("#!/bin/sh\n"), 0o755)
	// A text file named like a library must not be taken for one.
	os.MkdirAll(filepath.Join(root, "lib64"), 0o755)
	os.WriteFile(filepath.Join(root, "lib64/liblzma.so.5"), []byte("not elf"), 0o644)

	_, err := ELFClosure(root, "/usr/bin/zstd")
	if !errors.Is(err, ErrLibraryMissing) || !strings.Contains(err.Error(), "liblzma.so.5") {
		t.Errorf("missing liblzma: err = %v", err)
	}
	copyInto("/lib/x86_64-linux-gnu/liblzma.so.5")
	copyInto("/lib/x86_64-linux-gnu/liblz4.so.1")
	libs, err := ELFClosure(root, "/usr/bin/zstd")
	if err != nil || len(libs) != len(elfLddClosure(t, "/usr/bin/zstd")) {
		t.Errorf("complete root: %v %v", libs, err)
	}
	if _, err := ELFClosure(root, "/script"); !errors.Is(err, ErrNotELF) {
		t.Errorf("script: err = %v, want ErrNotELF", err)
	}
	if _, err := ELFClosure(root, "/nope"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing binary: err = %v", err)
	}
	static := elfStaticBinary(t)
	if err := exec.Command(static).Run(); err != nil {
		t.Fatalf("the static stand-in does not run: %v", err)
	}
	if libs, err := ELFClosure("/", static); err != nil || len(libs) != 0 {
		t.Errorf("static binary needs %v (err %v)", libs, err)
	}
}

// FuzzELFClosure: a malformed binary is an error, never a panic or a huge
// allocation.
func FuzzELFClosure(f *testing.F) {
	for _, p := range []string{"/usr/bin/zstd", "/lib/x86_64-linux-gnu/libz.so.1"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b[:min(len(b), 4096)])
		}
	}
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "bin"), b, 0o755); err != nil {
			t.Fatal(err)
		}
		libs, err := ELFClosure(dir, "/bin")
		if err == nil && len(libs) > 0 {
			for _, l := range libs {
				if _, err := os.Stat(filepath.Join(dir, l)); err != nil {
					t.Fatalf("closure names %s, which is not under the root", l)
				}
			}
		}
	})
}
