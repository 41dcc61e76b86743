package boot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// ErrNoPartUUID: the partition table does not yield a PARTUUID for a
// partition (unreadable, corrupt, or no such entry).
var ErrNoPartUUID = errors.New("no PARTUUID")

// maxGPTEntryBytes bounds the partition entry array read from a disk; the
// usual array is 16 KiB.
const maxGPTEntryBytes = 1 << 20

// ReadPartUUID returns the PARTUUID the kernel would give partition partN
// (1-based) of the disk read through r: the GPT unique partition GUID in
// lower case when the disk has a protective MBR, else the MBR form
// "<disk signature>-<partN>" ("%08x-%02x"), as block/partitions does. The
// 6.1 kernel does not put PARTUUID in the uevent, so it is read from the disk.
func ReadPartUUID(r io.ReaderAt, sectorSize, partN int) (string, error) {
	if sectorSize < 512 || sectorSize > 65536 || sectorSize&(sectorSize-1) != 0 {
		return "", fmt.Errorf("%w: sector size %d", ErrNoPartUUID, sectorSize)
	}
	if partN < 1 {
		return "", fmt.Errorf("%w: partition number %d", ErrNoPartUUID, partN)
	}
	mbr := make([]byte, 512)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		return "", fmt.Errorf("%w: reading MBR: %v", ErrNoPartUUID, err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		return "", fmt.Errorf("%w: no MBR boot signature", ErrNoPartUUID)
	}
	for i := 0; i < 4; i++ {
		if mbr[446+16*i+4] == 0xEE {
			return gptPartUUID(r, sectorSize, partN)
		}
	}
	return fmt.Sprintf("%08x-%02x", binary.LittleEndian.Uint32(mbr[440:]), partN), nil
}

// gptPartUUID reads the primary GPT header and entry array, checking both
// CRCs, and returns entry partN-1's unique GUID.
func gptPartUUID(r io.ReaderAt, sectorSize, partN int) (string, error) {
	hdr := make([]byte, sectorSize)
	if _, err := r.ReadAt(hdr, int64(sectorSize)); err != nil {
		return "", fmt.Errorf("%w: reading GPT header: %v", ErrNoPartUUID, err)
	}
	if string(hdr[:8]) != "EFI PART" {
		return "", fmt.Errorf("%w: no GPT signature", ErrNoPartUUID)
	}
	hdrSize := binary.LittleEndian.Uint32(hdr[12:])
	if hdrSize < 92 || int(hdrSize) > sectorSize {
		return "", fmt.Errorf("%w: GPT header size %d", ErrNoPartUUID, hdrSize)
	}
	want := binary.LittleEndian.Uint32(hdr[16:])
	check := append([]byte(nil), hdr[:hdrSize]...)
	copy(check[16:20], []byte{0, 0, 0, 0})
	if crc32.ChecksumIEEE(check) != want {
		return "", fmt.Errorf("%w: GPT header CRC mismatch", ErrNoPartUUID)
	}
	entriesLBA := binary.LittleEndian.Uint64(hdr[72:])
	count := binary.LittleEndian.Uint32(hdr[80:])
	entrySize := binary.LittleEndian.Uint32(hdr[84:])
	if entrySize < 128 || entrySize%8 != 0 || uint64(count)*uint64(entrySize) > maxGPTEntryBytes {
		return "", fmt.Errorf("%w: GPT entry array %d x %d", ErrNoPartUUID, count, entrySize)
	}
	if uint64(partN) > uint64(count) {
		return "", fmt.Errorf("%w: partition %d beyond %d GPT entries", ErrNoPartUUID, partN, count)
	}
	if entriesLBA < 2 || entriesLBA > (1<<62)/uint64(sectorSize) {
		return "", fmt.Errorf("%w: GPT entry LBA %d", ErrNoPartUUID, entriesLBA)
	}
	arr := make([]byte, int(count)*int(entrySize))
	if _, err := r.ReadAt(arr, int64(entriesLBA)*int64(sectorSize)); err != nil {
		return "", fmt.Errorf("%w: reading GPT entries: %v", ErrNoPartUUID, err)
	}
	if crc32.ChecksumIEEE(arr) != binary.LittleEndian.Uint32(hdr[88:]) {
		return "", fmt.Errorf("%w: GPT entry array CRC mismatch", ErrNoPartUUID)
	}
	e := arr[(partN-1)*int(entrySize):]
	if allZero(e[:16]) {
		return "", fmt.Errorf("%w: GPT entry %d is unused", ErrNoPartUUID, partN)
	}
	return formatGUID(e[16:32]), nil
}

// formatGUID renders an on-disk (mixed-endian) GUID in lower case.
func formatGUID(g []byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(g[0:4]), binary.LittleEndian.Uint16(g[4:6]),
		binary.LittleEndian.Uint16(g[6:8]), g[8:10], g[10:16])
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
