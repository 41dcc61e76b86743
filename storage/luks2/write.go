package luks2

import (
	"fmt"
	"io"
)

// Device is what the writer needs: positional writes and a barrier. *os.File
// satisfies it.
type Device interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
}

// Write puts the layout on dev in the order that survives a power cut at any
// point: keyslot areas, then the backup header, then the primary JSON area,
// and the primary binary header (which replaces whatever was at offset 0,
// e.g. the provisioning marker) LAST, each step behind a Sync. Until that
// final 4 KiB write lands the device does not look like LUKS; the fields that
// make it LUKS (magic, sizes, checksum) all sit in its first 512-byte sector,
// which disks write atomically.
func (l *Layout) Write(dev Device) error {
	step := func(what string, b []byte, off uint64) error {
		if _, err := dev.WriteAt(b, int64(off)); err != nil {
			return fmt.Errorf("write %s: %w", what, err)
		}
		if err := dev.Sync(); err != nil {
			return fmt.Errorf("sync after %s: %w", what, err)
		}
		return nil
	}
	for _, a := range l.Areas {
		if err := step("keyslot area", a.Bytes, a.Offset); err != nil {
			return err
		}
	}
	hdrSize := uint64(len(l.Primary))
	if err := step("backup header", l.Backup, hdrSize); err != nil {
		return err
	}
	if err := step("primary JSON area", l.Primary[BinHeaderSize:], BinHeaderSize); err != nil {
		return err
	}
	return step("primary binary header", l.Primary[:BinHeaderSize], 0)
}

// Format builds a volume for volumeKey and writes it to dev (deviceSize
// bytes). It returns the metadata written.
func Format(dev Device, deviceSize uint64, volumeKey []byte, opts FormatOptions) (*Metadata, error) {
	l, err := Build(volumeKey, deviceSize, opts)
	if err != nil {
		return nil, err
	}
	if err := l.Write(dev); err != nil {
		return nil, err
	}
	return l.Meta, nil
}
