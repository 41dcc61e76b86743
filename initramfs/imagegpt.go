package initramfs

// A minimal GPT for the boot stick: writing the one-partition table the
// image builder needs, and finding the ESP in an image an operator hands us.
// Both sides follow the UEFI specification (chapter 5) with 512-byte
// logical blocks, which is what USB sticks and image files use.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"unicode/utf16"
)

// Errors from reading a disk image's partition table.
var (
	ErrNoGPT = errors.New("gpt: no valid GUID partition table")
	ErrNoESP = errors.New("gpt: no partition named ESP of type EFI system")
)

const (
	gptSector       = 512
	gptEntrySize    = 128
	gptEntries      = 128
	gptEntryLBAs    = gptEntries * gptEntrySize / gptSector // 32
	gptHeaderSize   = 92
	gptSignature    = "EFI PART"
	gptRevision     = 0x00010000
	gptMaxEntryArea = 1 << 20 // refuse absurd tables in outside images
)

// gptESPType is C12A7328-F81F-11D2-BA4B-00A0C93EC93B in on-disk byte order.
var gptESPType = gptGUIDBytes([16]byte{0xC1, 0x2A, 0x73, 0x28, 0xF8, 0x1F, 0x11, 0xD2, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B})

// gptGUIDBytes turns a GUID in its textual (big-endian) byte order into the
// mixed-endian order GPT stores.
func gptGUIDBytes(u [16]byte) [16]byte {
	var b [16]byte
	binary.LittleEndian.PutUint32(b[0:], binary.BigEndian.Uint32(u[0:]))
	binary.LittleEndian.PutUint16(b[4:], binary.BigEndian.Uint16(u[4:]))
	binary.LittleEndian.PutUint16(b[6:], binary.BigEndian.Uint16(u[6:]))
	copy(b[8:], u[8:])
	return b
}

// gptPartition is one partition to write. GUIDs are in textual byte order.
type gptPartition struct {
	Type, GUID        [16]byte
	FirstLBA, LastLBA uint64
	Name              string
}

// gptLayout returns the protective MBR plus primary header and entries
// (written from byte 0) and the backup entries plus header (written to the
// last 33 sectors) for a disk of totalSectors.
func gptLayout(totalSectors uint64, diskGUID [16]byte, parts []gptPartition) (head, tail []byte, err error) {
	if totalSectors < 2*(1+gptEntryLBAs)+2 {
		return nil, nil, fmt.Errorf("gpt: disk of %d sectors is too small", totalSectors)
	}
	if len(parts) > gptEntries {
		return nil, nil, fmt.Errorf("gpt: %d partitions", len(parts))
	}
	last := totalSectors - 1
	firstUsable := uint64(2 + gptEntryLBAs)
	lastUsable := last - 1 - gptEntryLBAs

	entries := make([]byte, gptEntries*gptEntrySize)
	for i, p := range parts {
		if p.FirstLBA < firstUsable || p.LastLBA > lastUsable || p.LastLBA < p.FirstLBA {
			return nil, nil, fmt.Errorf("gpt: partition %d (%d-%d) outside %d-%d", i+1, p.FirstLBA, p.LastLBA, firstUsable, lastUsable)
		}
		e := entries[i*gptEntrySize:][:gptEntrySize]
		t, g := gptGUIDBytes(p.Type), gptGUIDBytes(p.GUID)
		copy(e[0:], t[:])
		copy(e[16:], g[:])
		binary.LittleEndian.PutUint64(e[32:], p.FirstLBA)
		binary.LittleEndian.PutUint64(e[40:], p.LastLBA)
		name := utf16.Encode([]rune(p.Name))
		if len(name) > 36 {
			return nil, nil, fmt.Errorf("gpt: partition name %q longer than 36 UTF-16 units", p.Name)
		}
		for j, c := range name {
			binary.LittleEndian.PutUint16(e[56+2*j:], c)
		}
	}
	entriesCRC := crc32.ChecksumIEEE(entries)

	header := func(self, alt, entriesLBA uint64) []byte {
		h := make([]byte, gptSector)
		copy(h, gptSignature)
		binary.LittleEndian.PutUint32(h[8:], gptRevision)
		binary.LittleEndian.PutUint32(h[12:], gptHeaderSize)
		binary.LittleEndian.PutUint64(h[24:], self)
		binary.LittleEndian.PutUint64(h[32:], alt)
		binary.LittleEndian.PutUint64(h[40:], firstUsable)
		binary.LittleEndian.PutUint64(h[48:], lastUsable)
		dg := gptGUIDBytes(diskGUID)
		copy(h[56:], dg[:])
		binary.LittleEndian.PutUint64(h[72:], entriesLBA)
		binary.LittleEndian.PutUint32(h[80:], gptEntries)
		binary.LittleEndian.PutUint32(h[84:], gptEntrySize)
		binary.LittleEndian.PutUint32(h[88:], entriesCRC)
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:gptHeaderSize]))
		return h
	}

	// Protective MBR: one partition of type 0xEE covering the disk.
	mbr := make([]byte, gptSector)
	pe := mbr[446:]
	copy(pe[1:4], []byte{0x00, 0x02, 0x00}) // CHS of LBA 1
	pe[4] = 0xEE
	copy(pe[5:8], []byte{0xFF, 0xFF, 0xFF})
	binary.LittleEndian.PutUint32(pe[8:], 1)
	binary.LittleEndian.PutUint32(pe[12:], uint32(min(totalSectors-1, 0xFFFFFFFF)))
	mbr[510], mbr[511] = 0x55, 0xAA

	head = append(append(mbr, header(1, last, 2)...), entries...)
	tail = append(bytes.Clone(entries), header(last, 1, last-gptEntryLBAs)...)
	return head, tail, nil
}

// ESPLocation is where the ESP lies in a disk image, in bytes.
type ESPLocation struct {
	Offset, Size int64
	// PartUUID is the partition's unique GUID in its usual textual form.
	PartUUID string
}

// FindESP reads the primary GPT of a disk image of size bytes and returns the
// partition named "ESP" with the EFI system type; failing a name match, the
// only EFI system partition. The headers and entry array are CRC-checked.
func FindESP(r io.ReaderAt, size int64) (ESPLocation, error) {
	hdr := make([]byte, gptSector)
	if _, err := r.ReadAt(hdr, gptSector); err != nil {
		return ESPLocation{}, fmt.Errorf("%w: reading header: %v", ErrNoGPT, err)
	}
	if string(hdr[:8]) != gptSignature {
		return ESPLocation{}, fmt.Errorf("%w: no EFI PART signature", ErrNoGPT)
	}
	hsize := binary.LittleEndian.Uint32(hdr[12:])
	if hsize < gptHeaderSize || hsize > gptSector {
		return ESPLocation{}, fmt.Errorf("%w: header size %d", ErrNoGPT, hsize)
	}
	want := binary.LittleEndian.Uint32(hdr[16:])
	h := bytes.Clone(hdr[:hsize])
	clear(h[16:20])
	if crc32.ChecksumIEEE(h) != want {
		return ESPLocation{}, fmt.Errorf("%w: header CRC mismatch", ErrNoGPT)
	}
	entriesLBA := binary.LittleEndian.Uint64(hdr[72:])
	count := uint64(binary.LittleEndian.Uint32(hdr[80:]))
	esize := uint64(binary.LittleEndian.Uint32(hdr[84:]))
	if esize < gptEntrySize || esize%8 != 0 || count == 0 || count*esize > gptMaxEntryArea {
		return ESPLocation{}, fmt.Errorf("%w: %d entries of %d bytes", ErrNoGPT, count, esize)
	}
	if entriesLBA < 2 || entriesLBA > uint64(size)/gptSector || entriesLBA*gptSector+count*esize > uint64(size) {
		return ESPLocation{}, fmt.Errorf("%w: entry array outside the image", ErrNoGPT)
	}
	entries := make([]byte, count*esize)
	if _, err := r.ReadAt(entries, int64(entriesLBA*gptSector)); err != nil {
		return ESPLocation{}, fmt.Errorf("%w: reading entries: %v", ErrNoGPT, err)
	}
	if crc32.ChecksumIEEE(entries) != binary.LittleEndian.Uint32(hdr[88:]) {
		return ESPLocation{}, fmt.Errorf("%w: entry array CRC mismatch", ErrNoGPT)
	}

	var named, typed []ESPLocation
	for i := uint64(0); i < count; i++ {
		e := entries[i*esize:][:gptEntrySize]
		if !bytes.Equal(e[0:16], gptESPType[:]) {
			continue
		}
		first, last := binary.LittleEndian.Uint64(e[32:]), binary.LittleEndian.Uint64(e[40:])
		if last < first || last >= uint64(size)/gptSector {
			return ESPLocation{}, fmt.Errorf("%w: partition %d (%d-%d) outside the image", ErrNoGPT, i+1, first, last)
		}
		loc := ESPLocation{
			Offset:   int64(first * gptSector),
			Size:     int64((last - first + 1) * gptSector),
			PartUUID: gptGUIDString(e[16:32]),
		}
		typed = append(typed, loc)
		if gptEntryName(e[56:128]) == "ESP" {
			named = append(named, loc)
		}
	}
	switch {
	case len(named) == 1:
		return named[0], nil
	case len(named) == 0 && len(typed) == 1:
		return typed[0], nil
	}
	return ESPLocation{}, fmt.Errorf("%w (%d named ESP, %d of the type)", ErrNoESP, len(named), len(typed))
}

func gptEntryName(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// gptGUIDString formats an on-disk (mixed-endian) GUID as text.
func gptGUIDString(b []byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(b[0:]),
		binary.LittleEndian.Uint16(b[4:]), binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16])
}
