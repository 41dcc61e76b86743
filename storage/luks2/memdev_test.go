package luks2

import (
	"errors"
	"io"
)

// memDevice is a sparse in-memory block device: unwritten bytes read as
// zero, so a large declared size costs nothing.
type memDevice struct {
	size    uint64
	sectors map[uint64][]byte // 512-byte sectors by index
	syncs   int
}

func newMemDevice(size uint64) *memDevice {
	return &memDevice{size: size, sectors: map[uint64][]byte{}}
}

func (d *memDevice) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || uint64(off) >= d.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && uint64(off)+uint64(n) < d.size {
		pos := uint64(off) + uint64(n)
		sec, in := pos/512, pos%512
		chunk := min(uint64(len(p)-n), 512-in)
		if s, ok := d.sectors[sec]; ok {
			copy(p[n:n+int(chunk)], s[in:in+chunk])
		} else {
			clear(p[n : n+int(chunk)])
		}
		n += int(chunk)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (d *memDevice) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || uint64(off)+uint64(len(p)) > d.size {
		return 0, errors.New("write beyond device")
	}
	for n := 0; n < len(p); {
		pos := uint64(off) + uint64(n)
		sec, in := pos/512, pos%512
		s, ok := d.sectors[sec]
		if !ok {
			s = make([]byte, 512)
			d.sectors[sec] = s
		}
		chunk := min(uint64(len(p)-n), 512-in)
		copy(s[in:in+chunk], p[n:n+int(chunk)])
		n += int(chunk)
	}
	return len(p), nil
}

func (d *memDevice) Sync() error { d.syncs++; return nil }

func (d *memDevice) clone() *memDevice {
	c := newMemDevice(d.size)
	for k, v := range d.sectors {
		c.sectors[k] = append([]byte(nil), v...)
	}
	return c
}

var errPowerCut = errors.New("power cut")

// cutDevice loses power after budget sectors have been written: the write
// that crosses the budget lands only its first sectors (sectors are atomic,
// whole writes are not), and every later write fails.
type cutDevice struct {
	*memDevice
	budget int
}

func (d *cutDevice) WriteAt(p []byte, off int64) (int, error) {
	if off%512 != 0 || len(p)%512 != 0 {
		return 0, errors.New("unaligned write")
	}
	sectors := len(p) / 512
	if sectors <= d.budget {
		d.budget -= sectors
		return d.memDevice.WriteAt(p, off)
	}
	n := d.budget * 512
	d.budget = 0
	if n > 0 {
		d.memDevice.WriteAt(p[:n], off)
	}
	return n, errPowerCut
}

// sectorsWritten counts the sectors a full write sequence needs.
type countDevice struct {
	*memDevice
	sectors int
}

func (d *countDevice) WriteAt(p []byte, off int64) (int, error) {
	d.sectors += (len(p) + 511) / 512
	return d.memDevice.WriteAt(p, off)
}
