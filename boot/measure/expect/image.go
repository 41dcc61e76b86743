package expect

import (
	"bytes"
	"fmt"
	"io"
	"os"

	diskfs "github.com/diskfs/go-diskfs"
)

// uKIPaths are where an inert ESP carries the UKI (the removable-media
// loader path), in the spellings FAT lookups may need.
var ukiPaths = []string{"/EFI/Boot/BootX64.efi", "/EFI/BOOT/BOOTX64.EFI"}

// maxUKI bounds what is read as a UKI.
const maxUKI = 512 << 20

// LoadUKI reads path as a UKI when it is a PE file ("MZ"), else as a GPT disk
// image whose ESP carries the UKI at the loader path. It returns the UKI
// bytes and where they came from.
func LoadUKI(path string) ([]byte, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	magic := make([]byte, 2)
	if _, err := io.ReadFull(f, magic); err != nil {
		return nil, "", fmt.Errorf("%w: %s: %v", ErrNotUKI, path, err)
	}
	if bytes.Equal(magic, []byte("MZ")) {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, "", err
		}
		b, err := io.ReadAll(io.LimitReader(f, maxUKI+1))
		if err != nil {
			return nil, "", err
		}
		if len(b) > maxUKI {
			return nil, "", fmt.Errorf("%w: %s is larger than %d bytes", ErrNotUKI, path, maxUKI)
		}
		return b, path, nil
	}
	return ukiFromImage(path)
}

func ukiFromImage(path string) ([]byte, string, error) {
	d, err := diskfs.Open(path, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s: %v", ErrNoUKIInImage, path, err)
	}
	defer d.Close()
	table, err := d.GetPartitionTable()
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s: %v", ErrNoUKIInImage, path, err)
	}
	for i := range table.GetPartitions() {
		fs, err := d.GetFilesystem(i + 1)
		if err != nil {
			continue // not FAT: not an ESP
		}
		for _, p := range ukiPaths {
			file, err := fs.OpenFile(p, os.O_RDONLY)
			if err != nil {
				continue
			}
			b, err := io.ReadAll(io.LimitReader(file, maxUKI+1))
			file.Close()
			if err != nil || len(b) > maxUKI {
				return nil, "", fmt.Errorf("%w: %s partition %d %s unreadable or too large", ErrNoUKIInImage, path, i+1, p)
			}
			return b, fmt.Sprintf("%s partition %d %s", path, i+1, p), nil
		}
	}
	return nil, "", fmt.Errorf("%w: %s has no partition with %s", ErrNoUKIInImage, path, ukiPaths[0])
}
