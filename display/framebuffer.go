package display

import (
	"encoding/binary"
	"fmt"
	"image"
)

// Framebuffer draws whole frames into framebuffer memory of a known Geometry.
// The memory is either the mmap of /dev/fb0 (OpenFramebuffer) or any byte
// slice (NewFramebuffer, used by tests), so conversion and placement are the
// same code in both.
type Framebuffer struct {
	geo     Geometry
	mem     []byte
	row     []byte // one converted line, copied into mem in one go
	lut     [3][256]uint32
	opaque  uint32 // transp bits set to all ones
	release func() error
}

// NewFramebuffer wraps mem, which must hold every visible pixel of geo.
func NewFramebuffer(mem []byte, geo Geometry) (*Framebuffer, error) {
	if err := geo.Validate(len(mem)); err != nil {
		return nil, err
	}
	fb := &Framebuffer{geo: geo, mem: mem, row: make([]byte, geo.Width*geo.Format.BytesPerPixel())}
	for i, ch := range []Channel{geo.Format.Red, geo.Format.Green, geo.Format.Blue} {
		for v := range 256 {
			fb.lut[i][v] = scaleChannel(uint32(v), ch.Length) << ch.Offset
		}
	}
	if t := geo.Format.Transp; t.Length > 0 {
		fb.opaque = (uint32(1)<<t.Length - 1) << t.Offset
	}
	return fb, nil
}

// scaleChannel maps an 8-bit value onto a channel of bits width, rounding
// to nearest so that full white stays full white at every depth.
func scaleChannel(v, bits uint32) uint32 {
	maxOut := uint32(1)<<bits - 1
	return (v*maxOut + 127) / 255
}

// Geometry reports the visible size, stride, offsets and pixel format.
func (fb *Framebuffer) Geometry() Geometry { return fb.geo }

// Bounds is the visible screen as an image rectangle.
func (fb *Framebuffer) Bounds() image.Rectangle {
	return image.Rect(0, 0, fb.geo.Width, fb.geo.Height)
}

// Draw converts img (which must be exactly the screen size) and copies it to
// the screen one whole line at a time, so a line is never half old, half new.
func (fb *Framebuffer) Draw(img *image.RGBA) error {
	if img.Rect.Dx() != fb.geo.Width || img.Rect.Dy() != fb.geo.Height {
		return fmt.Errorf("display: frame is %v, screen is %dx%d", img.Rect.Size(), fb.geo.Width, fb.geo.Height)
	}
	bpp := fb.geo.Format.BytesPerPixel()
	for y := range fb.geo.Height {
		src := img.Pix[y*img.Stride : y*img.Stride+fb.geo.Width*4]
		fb.convertRow(fb.row, src, bpp)
		start := (fb.geo.YOffset+y)*fb.geo.Stride + fb.geo.XOffset*bpp
		copy(fb.mem[start:start+len(fb.row)], fb.row)
	}
	return nil
}

// convertRow packs RGBA pixels (alpha ignored: frames are opaque) into dst.
func (fb *Framebuffer) convertRow(dst, src []byte, bpp int) {
	lr, lg, lb := &fb.lut[0], &fb.lut[1], &fb.lut[2]
	switch bpp {
	case 4:
		for i, j := 0, 0; i+3 < len(src); i, j = i+4, j+4 {
			binary.LittleEndian.PutUint32(dst[j:], lr[src[i]]|lg[src[i+1]]|lb[src[i+2]]|fb.opaque)
		}
	case 3:
		for i, j := 0, 0; i+3 < len(src); i, j = i+4, j+3 {
			p := lr[src[i]] | lg[src[i+1]] | lb[src[i+2]] | fb.opaque
			dst[j], dst[j+1], dst[j+2] = byte(p), byte(p>>8), byte(p>>16)
		}
	case 2:
		for i, j := 0, 0; i+3 < len(src); i, j = i+4, j+2 {
			binary.LittleEndian.PutUint16(dst[j:], uint16(lr[src[i]]|lg[src[i+1]]|lb[src[i+2]]|fb.opaque))
		}
	}
}

// Close unmaps the framebuffer memory, if it was mapped.
func (fb *Framebuffer) Close() error {
	if fb.release == nil {
		return nil
	}
	err := fb.release()
	fb.release, fb.mem = nil, nil
	return err
}
