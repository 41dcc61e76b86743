package initramfs

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// ErrCompression means an unknown compression was asked for.
var ErrCompression = errors.New("initramfs: unknown compression (want zstd, gzip or none)")

// Compressions the kernel can unpack, as named on the command line.
const (
	CompressZstd = "zstd"
	CompressGzip = "gzip"
	CompressNone = "none"
)

// Compress compresses an archive deterministically: the same input gives the
// same bytes on every machine. zstd uses one goroutine, a fixed level and an
// 8 MiB window (the kernel's decompressor allocates the window); gzip has a
// zero mtime and no name in its header.
func Compress(compression string, archive []byte) ([]byte, error) {
	var buf bytes.Buffer
	switch compression {
	case CompressZstd:
		enc, err := zstd.NewWriter(&buf,
			zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderLevel(zstd.SpeedBetterCompression),
			zstd.WithWindowSize(8<<20),
			zstd.WithEncoderCRC(true))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		if _, err := enc.Write(archive); err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		if err := enc.Close(); err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
	case CompressGzip:
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			return nil, err
		}
		if _, err := zw.Write(archive); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		if err := zw.Close(); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
	case CompressNone:
		return archive, nil
	default:
		return nil, fmt.Errorf("%w: %q", ErrCompression, compression)
	}
	return buf.Bytes(), nil
}
