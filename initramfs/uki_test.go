package initramfs

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"inert/kernel"
)

const testStubPath = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

// testKernelPath is the installed Debian kernel (deps.sh installs one).
func testKernelPath(t testing.TB) string {
	t.Helper()
	k, err := kernel.Installed("/boot", "/lib/modules")
	if err != nil {
		t.Fatal(err)
	}
	return k.Vmlinuz
}

func ukiTestStub(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(testStubPath)
	if err != nil {
		t.Fatalf("systemd-boot-efi stub needed: %v", err)
	}
	return b
}

func ukiTestSections() UKISections {
	return UKISections{
		OSRel:   []byte("ID=inert\nNAME=inert\n"),
		Cmdline: []byte("console=ttyS0 inert.mode=prod"),
		Uname:   []byte("6.1.0-56-amd64"),
		Initrd:  bytes.Repeat([]byte("initrd-bytes-"), 1000),
		Linux:   bytes.Repeat([]byte{0xAB, 0xCD, 0xEF}, 5001),
	}
}

func TestAssembleUKIParsesBack(t *testing.T) {
	stub := ukiTestStub(t)
	in := ukiTestSections()
	out, err := AssembleUKI(stub, in)
	if err != nil {
		t.Fatal(err)
	}
	f, err := pe.NewFile(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("debug/pe rejects the UKI: %v", err)
	}
	stubFile, err := pe.NewFile(bytes.NewReader(stub))
	if err != nil {
		t.Fatal(err)
	}
	if f.NumberOfSymbols != 0 || f.PointerToSymbolTable != 0 {
		t.Errorf("symbol table kept: ptr=%d n=%d", f.PointerToSymbolTable, f.NumberOfSymbols)
	}
	oh := f.OptionalHeader.(*pe.OptionalHeader64)
	soh := stubFile.OptionalHeader.(*pe.OptionalHeader64)
	if oh.CheckSum != 0 {
		t.Errorf("checksum %#x, want 0", oh.CheckSum)
	}
	want := []struct {
		name string
		data []byte
	}{{".osrel", in.OSRel}, {".cmdline", in.Cmdline}, {".uname", in.Uname}, {".initrd", in.Initrd}, {".linux", in.Linux}}
	if len(f.Sections) != len(stubFile.Sections)+len(want) {
		t.Fatalf("%d sections, want %d", len(f.Sections), len(stubFile.Sections)+len(want))
	}
	// The stub's own sections are untouched.
	for i, s := range stubFile.Sections {
		got := f.Sections[i]
		a, _ := s.Data()
		b, _ := got.Data()
		if got.Name != s.Name || got.VirtualAddress != s.VirtualAddress || !bytes.Equal(a, b) {
			t.Errorf("stub section %s changed", s.Name)
		}
	}
	prevEnd := uint32(0)
	for _, s := range stubFile.Sections {
		prevEnd = max(prevEnd, s.VirtualAddress+max(s.VirtualSize, s.Size))
	}
	var addedRaw uint32
	for i, w := range want {
		s := f.Sections[len(stubFile.Sections)+i]
		if s.Name != w.name {
			t.Errorf("section %d is %q, want %q", i, s.Name, w.name)
			continue
		}
		data, err := s.Data()
		if err != nil {
			t.Fatal(err)
		}
		if s.VirtualSize != uint32(len(w.data)) || !bytes.Equal(data[:s.VirtualSize], w.data) {
			t.Errorf("%s: content differs (vsize %d, want %d)", w.name, s.VirtualSize, len(w.data))
		}
		if s.VirtualAddress%oh.SectionAlignment != 0 || s.Offset%oh.FileAlignment != 0 || s.Size%oh.FileAlignment != 0 {
			t.Errorf("%s misaligned: va=%#x off=%#x size=%#x", w.name, s.VirtualAddress, s.Offset, s.Size)
		}
		if s.VirtualAddress < prevEnd {
			t.Errorf("%s at %#x overlaps previous end %#x", w.name, s.VirtualAddress, prevEnd)
		}
		if s.Characteristics != pe.IMAGE_SCN_CNT_INITIALIZED_DATA|pe.IMAGE_SCN_MEM_READ {
			t.Errorf("%s characteristics %#x", w.name, s.Characteristics)
		}
		prevEnd = s.VirtualAddress + s.VirtualSize
		addedRaw += s.Size
	}
	last := f.Sections[len(f.Sections)-1]
	if oh.SizeOfImage < last.VirtualAddress+last.VirtualSize || oh.SizeOfImage%oh.SectionAlignment != 0 {
		t.Errorf("SizeOfImage %#x does not cover the last section", oh.SizeOfImage)
	}
	if oh.SizeOfInitializedData != soh.SizeOfInitializedData+addedRaw {
		t.Errorf("SizeOfInitializedData %#x, want %#x", oh.SizeOfInitializedData, soh.SizeOfInitializedData+addedRaw)
	}
	if uint32(len(out)) != last.Offset+last.Size {
		t.Errorf("file is %d bytes, last section ends at %d", len(out), last.Offset+last.Size)
	}
	again, err := AssembleUKI(stub, in)
	if err != nil || !bytes.Equal(again, out) {
		t.Error("assembly is not reproducible")
	}
}

// objdump (binutils) is a second, independent PE reader.
func TestAssembleUKIObjdump(t *testing.T) {
	out, err := AssembleUKI(ukiTestStub(t), ukiTestSections())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "uki.efi")
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := exec.Command("objdump", "-h", p).CombinedOutput()
	if err != nil {
		t.Fatalf("objdump: %v\n%s", err, o)
	}
	for _, name := range []string{".osrel", ".cmdline", ".uname", ".initrd", ".linux", ".sdmagic"} {
		if !strings.Contains(string(o), " "+name+" ") {
			t.Errorf("objdump does not list %s:\n%s", name, o)
		}
	}
}

func TestAssembleUKIOmitsEmptySections(t *testing.T) {
	stub := ukiTestStub(t)
	out, err := AssembleUKI(stub, UKISections{Linux: []byte("kernel")})
	if err != nil {
		t.Fatal(err)
	}
	f, err := pe.NewFile(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if f.Section(".linux") == nil || f.Section(".initrd") != nil || f.Section(".cmdline") != nil {
		t.Error("want only .linux added")
	}
}

func TestAssembleUKIRefusals(t *testing.T) {
	stub := ukiTestStub(t)
	p, err := ukiParsePE(stub)
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(b []byte) []byte) []byte {
		return f(bytes.Clone(stub))
	}
	cases := []struct {
		name string
		stub []byte
		sec  UKISections
		want error
	}{
		{"no kernel", stub, UKISections{Cmdline: []byte("x")}, ErrUKINoKernel},
		{"not MZ", mutate(func(b []byte) []byte { b[0] = 'X'; return b }), ukiTestSections(), ErrStubMalformed},
		{"truncated", stub[:100], ukiTestSections(), ErrStubMalformed},
		{"no PE signature", mutate(func(b []byte) []byte { b[p.coff-4] = 'X'; return b }), ukiTestSections(), ErrStubMalformed},
		{"PE32 not PE32+", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint16(b[p.opt:], 0x10b); return b }), ukiTestSections(), ErrStubMalformed},
		{"odd file alignment", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[p.opt+36:], 3); return b }), ukiTestSections(), ErrStubMalformed},
		{"signed stub", mutate(func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[p.dataDirOffset(b, ukiDataDirSecurity)+4:], 8)
			return b
		}), ukiTestSections(), ErrStubSigned},
		{"stub already has .linux", mutate(func(b []byte) []byte { copy(p.section(b, 0)[:8], ".linux\x00\x00"); return b }), ukiTestSections(), ErrStubHasSection},
		{"header space full", mutate(func(b []byte) []byte {
			// Claim so many sections that the new headers cannot fit.
			n := (int(p.sizeOfHdrs)-p.sectionsOff)/ukiSectionHeaderSize - 2
			binary.LittleEndian.PutUint16(b[p.coff+2:], uint16(n))
			for i := p.nSections; i < n; i++ {
				copy(p.section(b, i)[:8], ".pad")
			}
			return b
		}), ukiTestSections(), ErrUKIHeaderFull},
		{"section data beyond the file", mutate(func(b []byte) []byte {
			binary.LittleEndian.PutUint32(p.section(b, 0)[16:], uint32(len(b)))
			return b
		}), ukiTestSections(), ErrStubMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := AssembleUKI(c.stub, c.sec)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestKernelRelease(t *testing.T) {
	kpath := testKernelPath(t)
	b, err := os.ReadFile(kpath)
	if err != nil {
		t.Fatalf("linux-image-amd64 needed: %v", err)
	}
	got, err := KernelRelease(b)
	if err != nil {
		t.Fatal(err)
	}
	// Debian names the file after the release.
	if want := strings.TrimPrefix(filepath.Base(kpath), "vmlinuz-"); got != want {
		t.Errorf("release %q, want %q", got, want)
	}
	if _, err := KernelRelease(ukiTestStub(t)); !errors.Is(err, ErrNotBzImage) {
		t.Errorf("stub: got %v, want ErrNotBzImage", err)
	}
	noPtr := bytes.Clone(b[:0x1000])
	binary.LittleEndian.PutUint16(noPtr[0x20e:], 0)
	if _, err := KernelRelease(noPtr); !errors.Is(err, ErrNoKernelRelease) {
		t.Errorf("zero pointer: got %v, want ErrNoKernelRelease", err)
	}
}

func FuzzAssembleUKI(f *testing.F) {
	// A small seed: the stub's headers with an empty section table. The
	// whole 83 KB stub makes the fuzzer's minimiser crawl.
	stub := ukiTestStub(f)
	p, err := ukiParsePE(stub)
	if err != nil {
		f.Fatal(err)
	}
	small := bytes.Clone(stub[:p.sizeOfHdrs])
	binary.LittleEndian.PutUint16(small[p.coff+2:], 0)
	clear(small[p.sectionsOff:])
	f.Add(small, []byte("linux"))
	f.Add([]byte("MZ"), []byte("k"))
	f.Fuzz(func(t *testing.T, stub, linux []byte) {
		out, err := AssembleUKI(stub, UKISections{Cmdline: []byte("c"), Linux: linux})
		if err != nil {
			return
		}
		// Whatever was accepted must come out as a PE whose last section is
		// the kernel, byte for byte. (debug/pe is kept out of the loop: it
		// allocates by untrusted counts and stalls the fuzzer.)
		p, err := ukiParsePE(out)
		if err != nil {
			t.Fatalf("output unparseable: %v", err)
		}
		h := p.section(out, p.nSections-1)
		off := binary.LittleEndian.Uint32(h[20:])
		if string(bytes.TrimRight(h[:8], "\x00")) != ".linux" || int(binary.LittleEndian.Uint32(h[8:])) != len(linux) ||
			!bytes.Equal(out[off:int(off)+len(linux)], linux) {
			t.Fatal(".linux section wrong")
		}
	})
}

func FuzzKernelRelease(f *testing.F) {
	f.Add(make([]byte, 0x300))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := KernelRelease(b)
		if err == nil && (s == "" || strings.ContainsAny(s, " \x00")) {
			t.Fatalf("bad release %q", s)
		}
	})
}
