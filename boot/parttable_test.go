package boot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadPartUUIDGPT(t *testing.T) {
	guids := []string{testGUIDVda1, testGUIDVda2}
	p := filepath.Join(t.TempDir(), "disk")
	writeGPT(t, p, guids...)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i, g := range guids {
		got, err := ReadPartUUID(f, 512, i+1)
		if err != nil || got != strings.ToLower(g) {
			t.Errorf("partition %d: got %q, %v; sgdisk wrote %q", i+1, got, err, g)
		}
	}
	if _, err := ReadPartUUID(f, 512, 3); !errors.Is(err, ErrNoPartUUID) {
		t.Errorf("unused entry: err = %v, want ErrNoPartUUID", err)
	}
}

func TestReadPartUUIDFaults(t *testing.T) {
	p := filepath.Join(t.TempDir(), "disk")
	writeGPT(t, p, testGUIDSda1)
	good, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	entriesLBA := binary.LittleEndian.Uint64(good[512+72:])
	for _, tc := range []struct {
		name   string
		mutate func(b []byte)
		sector int
		partN  int
	}{
		{"header CRC", func(b []byte) { b[512+40] ^= 1 }, 512, 1},
		{"entry CRC", func(b []byte) { b[int(entriesLBA)*512+20] ^= 1 }, 512, 1},
		{"no GPT signature", func(b []byte) { copy(b[512:], "NOT PART") }, 512, 1},
		{"no boot signature", func(b []byte) { b[510] = 0 }, 512, 1},
		{"wrong sector size", func(b []byte) {}, 4096, 1},
		{"bad sector size", func(b []byte) {}, 1000, 1},
		{"partition 0", func(b []byte) {}, 512, 0},
		{"beyond entries", func(b []byte) {}, 512, 129},
		{"truncated", nil, 512, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := append([]byte(nil), good...)
			if tc.mutate == nil {
				b = b[:1024]
			} else {
				tc.mutate(b)
			}
			if _, err := ReadPartUUID(bytes.NewReader(b), tc.sector, tc.partN); !errors.Is(err, ErrNoPartUUID) {
				t.Fatalf("err = %v, want ErrNoPartUUID", err)
			}
		})
	}
}

func TestReadPartUUIDMBR(t *testing.T) {
	// The kernel names MBR partitions "<disk signature>-<number>", both in
	// lower-case hex (block/partitions/msdos.c).
	b := make([]byte, 1024)
	binary.LittleEndian.PutUint32(b[440:], 0x9bdf2dc6)
	b[446+4] = 0x0c // FAT32 LBA
	b[510], b[511] = 0x55, 0xAA
	got, err := ReadPartUUID(bytes.NewReader(b), 512, 2)
	if err != nil || got != "9bdf2dc6-02" {
		t.Fatalf("got %q, %v; want 9bdf2dc6-02", got, err)
	}
}
