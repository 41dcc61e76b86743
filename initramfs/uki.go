package initramfs

// UKI assembly: a systemd EFI stub with the kernel, initrd, command line and
// os-release appended as PE sections, written in pure Go so the build needs
// neither objcopy nor ukify and is byte-reproducible.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Errors from UKI assembly. Callers match them with errors.Is.
var (
	ErrStubMalformed   = errors.New("uki: stub is not a PE32+ image")
	ErrStubSigned      = errors.New("uki: stub already carries a signature")
	ErrStubHasSection  = errors.New("uki: stub already has a UKI section")
	ErrUKIHeaderFull   = errors.New("uki: no room for more section headers in the stub's header space")
	ErrUKINoKernel     = errors.New("uki: no kernel (.linux) given")
	ErrUKITooLarge     = errors.New("uki: sections too large")
	ErrNotBzImage      = errors.New("uki: kernel is not an x86 bzImage")
	ErrNoKernelRelease = errors.New("uki: kernel image has no version string")
)

// UKISections are the payloads appended to the stub. Empty ones are left
// out, except Linux, which is required.
type UKISections struct {
	OSRel   []byte
	Cmdline []byte
	Uname   []byte
	Initrd  []byte
	Linux   []byte
}

// ordered is the order ukify writes sections in: small ones first, the
// kernel last because it is the biggest. The 252 stub finds sections by
// name, so the order only matters for reproducibility.
func (s UKISections) ordered() []ukiSection {
	all := []ukiSection{
		{".osrel", s.OSRel},
		{".cmdline", s.Cmdline},
		{".uname", s.Uname},
		{".initrd", s.Initrd},
		{".linux", s.Linux},
	}
	out := all[:0]
	for _, sec := range all {
		if len(sec.data) > 0 {
			out = append(out, sec)
		}
	}
	return out
}

type ukiSection struct {
	name string
	data []byte
}

// PE/COFF layout constants (Microsoft PE format specification).
const (
	ukiPESigOffsetField   = 0x3c
	ukiCOFFHeaderSize     = 20
	ukiSectionHeaderSize  = 40
	ukiOptMagicPE32Plus   = 0x20b
	ukiScnInitializedData = 0x00000040
	ukiScnMemRead         = 0x40000000
	ukiDataDirSecurity    = 4
)

// ukiPE is a view of the header fields of a PE32+ image that assembly reads
// and rewrites. Offsets are absolute file offsets.
type ukiPE struct {
	coff         int // COFF file header
	opt          int // optional header
	sectionsOff  int // first section header
	nSections    int
	sectionAlign uint32
	fileAlign    uint32
	sizeOfHdrs   uint32
}

// ukiParsePE checks that b is a PE32+ image whose headers lie inside b.
func ukiParsePE(b []byte) (ukiPE, error) {
	var p ukiPE
	if len(b) < 0x40 || b[0] != 'M' || b[1] != 'Z' {
		return p, fmt.Errorf("%w: no MZ header", ErrStubMalformed)
	}
	peOff := int(binary.LittleEndian.Uint32(b[ukiPESigOffsetField:]))
	if peOff < 0x40 || peOff > len(b)-4-ukiCOFFHeaderSize || !bytes.Equal(b[peOff:peOff+4], []byte("PE\x00\x00")) {
		return p, fmt.Errorf("%w: no PE signature", ErrStubMalformed)
	}
	p.coff = peOff + 4
	p.opt = p.coff + ukiCOFFHeaderSize
	p.nSections = int(binary.LittleEndian.Uint16(b[p.coff+2:]))
	optSize := int(binary.LittleEndian.Uint16(b[p.coff+16:]))
	if optSize < 112 || p.opt+optSize > len(b) {
		return p, fmt.Errorf("%w: optional header of %d bytes does not fit", ErrStubMalformed, optSize)
	}
	if binary.LittleEndian.Uint16(b[p.opt:]) != ukiOptMagicPE32Plus {
		return p, fmt.Errorf("%w: not PE32+", ErrStubMalformed)
	}
	p.sectionAlign = binary.LittleEndian.Uint32(b[p.opt+32:])
	p.fileAlign = binary.LittleEndian.Uint32(b[p.opt+36:])
	p.sizeOfHdrs = binary.LittleEndian.Uint32(b[p.opt+60:])
	if !ukiPowerOfTwo(p.fileAlign) || !ukiPowerOfTwo(p.sectionAlign) || p.fileAlign < 512 || p.fileAlign > 64<<10 || p.sectionAlign < p.fileAlign {
		return p, fmt.Errorf("%w: alignment file=%d section=%d", ErrStubMalformed, p.fileAlign, p.sectionAlign)
	}
	p.sectionsOff = p.opt + optSize
	if int64(p.sectionsOff)+int64(p.nSections)*ukiSectionHeaderSize > int64(len(b)) ||
		int64(p.sectionsOff)+int64(p.nSections)*ukiSectionHeaderSize > int64(p.sizeOfHdrs) ||
		int64(p.sizeOfHdrs) > int64(len(b)) {
		return p, fmt.Errorf("%w: section table outside the headers", ErrStubMalformed)
	}
	return p, nil
}

// section returns the header bytes of section i.
func (p ukiPE) section(b []byte, i int) []byte {
	off := p.sectionsOff + i*ukiSectionHeaderSize
	return b[off : off+ukiSectionHeaderSize]
}

// dataDirOffset is the file offset of data directory entry i, or -1.
func (p ukiPE) dataDirOffset(b []byte, i int) int {
	n := int(binary.LittleEndian.Uint32(b[p.opt+108:]))
	optSize := p.sectionsOff - p.opt
	off := p.opt + 112 + 8*i
	if i >= n || off+8 > p.opt+optSize {
		return -1
	}
	return off
}

// AssembleUKI returns stub with s appended as PE sections. The stub's COFF
// symbol table (debug data the loader ignores) is dropped so the new section
// data can follow the last section directly. The PE checksum is zeroed: UEFI
// does not check it, and signing would invalidate a computed one anyway.
// Same inputs give the same bytes.
func AssembleUKI(stub []byte, s UKISections) ([]byte, error) {
	if len(s.Linux) == 0 {
		return nil, ErrUKINoKernel
	}
	p, err := ukiParsePE(stub)
	if err != nil {
		return nil, err
	}
	if dd := p.dataDirOffset(stub, ukiDataDirSecurity); dd >= 0 && binary.LittleEndian.Uint64(stub[dd:]) != 0 {
		return nil, ErrStubSigned
	}
	add := s.ordered()

	// Where the existing sections end, in the file and in memory.
	rawEnd := uint64(p.sizeOfHdrs)
	virtEnd := uint64(binary.LittleEndian.Uint32(stub[p.opt+56:])) // SizeOfImage
	firstRaw := uint64(len(stub))
	for i := 0; i < p.nSections; i++ {
		h := p.section(stub, i)
		name := string(bytes.TrimRight(h[:8], "\x00"))
		for _, a := range add {
			if name == a.name {
				return nil, fmt.Errorf("%w: %s", ErrStubHasSection, name)
			}
		}
		vsize := uint64(binary.LittleEndian.Uint32(h[8:]))
		va := uint64(binary.LittleEndian.Uint32(h[12:]))
		rawSize := uint64(binary.LittleEndian.Uint32(h[16:]))
		rawPtr := uint64(binary.LittleEndian.Uint32(h[20:]))
		if rawSize > 0 {
			if rawPtr+rawSize > uint64(len(stub)) {
				return nil, fmt.Errorf("%w: section %q data beyond the file", ErrStubMalformed, name)
			}
			rawEnd = max(rawEnd, rawPtr+rawSize)
			firstRaw = min(firstRaw, rawPtr)
		}
		virtEnd = max(virtEnd, va+max(vsize, rawSize))
	}

	// The new headers go into the zero padding between the section table
	// and the first section's data.
	tableEnd := p.sectionsOff + (p.nSections+len(add))*ukiSectionHeaderSize
	if uint64(tableEnd) > min(uint64(p.sizeOfHdrs), firstRaw) {
		return nil, fmt.Errorf("%w: need %d bytes, have %d", ErrUKIHeaderFull, tableEnd, min(uint64(p.sizeOfHdrs), firstRaw))
	}
	oldTableEnd := p.sectionsOff + p.nSections*ukiSectionHeaderSize
	if !ukiAllZero(stub[oldTableEnd:tableEnd]) {
		return nil, fmt.Errorf("%w: bytes after the section table are in use", ErrUKIHeaderFull)
	}

	fileAlign, secAlign := uint64(p.fileAlign), uint64(p.sectionAlign)
	rawEnd = ukiAlign(rawEnd, fileAlign)
	va := ukiAlign(virtEnd, secAlign)
	total, vaEnd := rawEnd, va
	for _, a := range add {
		total += ukiAlign(uint64(len(a.data)), fileAlign)
		vaEnd = ukiAlign(vaEnd+uint64(len(a.data)), secAlign)
	}
	if total > math.MaxUint32 || vaEnd > math.MaxUint32 {
		return nil, fmt.Errorf("%w: %d bytes do not fit a PE image", ErrUKITooLarge, total)
	}

	out := make([]byte, total)
	copy(out, stub[:min(uint64(len(stub)), rawEnd)])
	var initData uint64
	raw := rawEnd
	for i, a := range add {
		h := out[oldTableEnd+i*ukiSectionHeaderSize:][:ukiSectionHeaderSize]
		copy(h[:8], a.name)
		rawSize := ukiAlign(uint64(len(a.data)), fileAlign)
		binary.LittleEndian.PutUint32(h[8:], uint32(len(a.data)))
		binary.LittleEndian.PutUint32(h[12:], uint32(va))
		binary.LittleEndian.PutUint32(h[16:], uint32(rawSize))
		binary.LittleEndian.PutUint32(h[20:], uint32(raw))
		binary.LittleEndian.PutUint32(h[36:], ukiScnInitializedData|ukiScnMemRead)
		copy(out[raw:], a.data)
		raw += rawSize
		initData += rawSize
		va = ukiAlign(va+uint64(len(a.data)), secAlign)
	}

	binary.LittleEndian.PutUint16(out[p.coff+2:], uint16(p.nSections+len(add)))
	binary.LittleEndian.PutUint32(out[p.coff+8:], 0)  // PointerToSymbolTable
	binary.LittleEndian.PutUint32(out[p.coff+12:], 0) // NumberOfSymbols
	oldInit := uint64(binary.LittleEndian.Uint32(out[p.opt+8:]))
	binary.LittleEndian.PutUint32(out[p.opt+8:], uint32(min(oldInit+initData, math.MaxUint32)))
	binary.LittleEndian.PutUint32(out[p.opt+56:], uint32(va)) // SizeOfImage
	binary.LittleEndian.PutUint32(out[p.opt+64:], 0)          // CheckSum
	return out, nil
}

// KernelRelease returns the release string of an x86 bzImage (what
// `uname -r` prints once it runs), read from the setup header's
// kernel_version pointer.
func KernelRelease(bzImage []byte) (string, error) {
	const (
		headerMagicOff = 0x202 // "HdrS"
		versionPtrOff  = 0x20e
		setupBase      = 0x200
		maxVersionLen  = 256
	)
	if len(bzImage) < versionPtrOff+2 || binary.LittleEndian.Uint16(bzImage[0x1fe:]) != 0xaa55 ||
		string(bzImage[headerMagicOff:headerMagicOff+4]) != "HdrS" {
		return "", ErrNotBzImage
	}
	ptr := int(binary.LittleEndian.Uint16(bzImage[versionPtrOff:]))
	if ptr == 0 || setupBase+ptr >= len(bzImage) {
		return "", ErrNoKernelRelease
	}
	s := bzImage[setupBase+ptr:]
	s = s[:min(len(s), maxVersionLen)]
	if i := bytes.IndexAny(s, " \x00"); i >= 0 {
		s = s[:i]
	}
	for _, c := range s {
		if c <= ' ' || c > '~' {
			return "", fmt.Errorf("%w: unprintable byte", ErrNoKernelRelease)
		}
	}
	if len(s) == 0 {
		return "", ErrNoKernelRelease
	}
	return string(s), nil
}

func ukiAlign(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }

func ukiPowerOfTwo(v uint32) bool { return v != 0 && v&(v-1) == 0 }

func ukiAllZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
