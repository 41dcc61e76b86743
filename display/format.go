package display

import (
	"errors"
	"fmt"
)

// ErrUnsupportedFormat means the framebuffer's pixel layout is one the splash
// will not guess at (palette, planar, grayscale, FOURCC, odd depths). The
// splash then runs headless rather than draw garbage.
var ErrUnsupportedFormat = errors.New("unsupported framebuffer pixel format")

// ErrBadGeometry means the framebuffer's reported geometry does not fit its
// memory (or is absurd); drawing would write out of bounds.
var ErrBadGeometry = errors.New("framebuffer geometry does not fit its memory")

// Channel is where one colour channel lives inside a pixel value: bit offset
// from the least significant bit, and width in bits.
type Channel struct {
	Offset uint32
	Length uint32
}

// PixelFormat is a packed true-colour layout: bits per pixel and the position
// of each channel. Pixel values are stored in the CPU's byte order, as the
// kernel's fb drivers do (little endian on every machine we target).
type PixelFormat struct {
	BitsPerPixel uint32
	Red, Green   Channel
	Blue, Transp Channel
}

// Common layouts, named the way DRM fourcc codes name them (high bit first).
var (
	// XRGB8888 is what efifb and simpledrm give on almost every PC.
	XRGB8888 = PixelFormat{BitsPerPixel: 32, Red: Channel{16, 8}, Green: Channel{8, 8}, Blue: Channel{0, 8}}
	// XBGR8888 swaps red and blue (some firmware GOPs).
	XBGR8888 = PixelFormat{BitsPerPixel: 32, Red: Channel{0, 8}, Green: Channel{8, 8}, Blue: Channel{16, 8}}
	// ARGB8888 has a real alpha channel, which must be written opaque.
	ARGB8888 = PixelFormat{BitsPerPixel: 32, Red: Channel{16, 8}, Green: Channel{8, 8}, Blue: Channel{0, 8}, Transp: Channel{24, 8}}
	// RGB888 and BGR888 are packed 24-bit layouts.
	RGB888 = PixelFormat{BitsPerPixel: 24, Red: Channel{16, 8}, Green: Channel{8, 8}, Blue: Channel{0, 8}}
	BGR888 = PixelFormat{BitsPerPixel: 24, Red: Channel{0, 8}, Green: Channel{8, 8}, Blue: Channel{16, 8}}
	// RGB565 is the usual 16-bit layout.
	RGB565 = PixelFormat{BitsPerPixel: 16, Red: Channel{11, 5}, Green: Channel{5, 6}, Blue: Channel{0, 5}}
)

// BytesPerPixel is the pixel size in bytes.
func (f PixelFormat) BytesPerPixel() int { return int(f.BitsPerPixel / 8) }

func (f PixelFormat) String() string {
	return fmt.Sprintf("%dbpp r%d/%d g%d/%d b%d/%d a%d/%d", f.BitsPerPixel,
		f.Red.Offset, f.Red.Length, f.Green.Offset, f.Green.Length,
		f.Blue.Offset, f.Blue.Length, f.Transp.Offset, f.Transp.Length)
}

// Validate accepts 16, 24 and 32 bpp layouts whose colour channels are 1 to
// 16 bits wide, inside the pixel, and do not overlap. Everything else is
// ErrUnsupportedFormat.
func (f PixelFormat) Validate() error {
	switch f.BitsPerPixel {
	case 16, 24, 32:
	default:
		return fmt.Errorf("%w: %d bits per pixel", ErrUnsupportedFormat, f.BitsPerPixel)
	}
	var used uint64
	for _, c := range []struct {
		name string
		ch   Channel
		opt  bool
	}{{"red", f.Red, false}, {"green", f.Green, false}, {"blue", f.Blue, false}, {"transp", f.Transp, true}} {
		if c.opt && c.ch.Length == 0 {
			continue
		}
		if c.ch.Length == 0 || c.ch.Length > 16 || c.ch.Offset >= f.BitsPerPixel || c.ch.Length > f.BitsPerPixel-c.ch.Offset {
			return fmt.Errorf("%w: %s channel at bit %d, %d bits wide, in %d bpp", ErrUnsupportedFormat, c.name, c.ch.Offset, c.ch.Length, f.BitsPerPixel)
		}
		mask := (uint64(1)<<c.ch.Length - 1) << c.ch.Offset
		if used&mask != 0 {
			return fmt.Errorf("%w: %s channel overlaps another", ErrUnsupportedFormat, c.name)
		}
		used |= mask
	}
	return nil
}

// Geometry is everything needed to place a pixel in framebuffer memory.
type Geometry struct {
	Width, Height int // visible resolution
	Stride        int // bytes per line (line_length), may be padded
	XOffset       int // visible area's offset inside the virtual screen
	YOffset       int
	Format        PixelFormat
}

// maxDimension caps what a driver may report, so a bogus value cannot make
// the splash allocate gigabytes.
const maxDimension = 16384

// Validate checks the format and that every visible pixel lies inside
// memLen bytes of framebuffer memory.
func (g Geometry) Validate(memLen int) error {
	if err := g.Format.Validate(); err != nil {
		return err
	}
	bpp := g.Format.BytesPerPixel()
	switch {
	case g.Width <= 0 || g.Height <= 0 || g.Width > maxDimension || g.Height > maxDimension:
		return fmt.Errorf("%w: resolution %dx%d", ErrBadGeometry, g.Width, g.Height)
	case g.XOffset < 0 || g.YOffset < 0 || g.XOffset > maxDimension || g.YOffset > maxDimension:
		return fmt.Errorf("%w: offset %d,%d", ErrBadGeometry, g.XOffset, g.YOffset)
	case g.Stride < (g.XOffset+g.Width)*bpp:
		return fmt.Errorf("%w: line length %d < %d pixels of %d bytes", ErrBadGeometry, g.Stride, g.XOffset+g.Width, bpp)
	}
	// No overflow: dimensions are capped above and Stride came from a uint32.
	end := (g.YOffset+g.Height-1)*g.Stride + (g.XOffset+g.Width)*bpp
	if end > memLen {
		return fmt.Errorf("%w: needs %d bytes, memory is %d", ErrBadGeometry, end, memLen)
	}
	return nil
}

// geometryFromScreenInfo turns the kernel's two structs into a Geometry,
// refusing layouts that are not packed true colour.
func geometryFromScreenInfo(v fbVarScreenInfo, f fbFixScreenInfo) (Geometry, error) {
	if f.Type != fbTypePackedPixels {
		return Geometry{}, fmt.Errorf("%w: type %d is not packed pixels", ErrUnsupportedFormat, f.Type)
	}
	if f.Visual != fbVisualTrueColor {
		return Geometry{}, fmt.Errorf("%w: visual %d is not true colour", ErrUnsupportedFormat, f.Visual)
	}
	if v.Grayscale != 0 || v.Nonstd != 0 {
		return Geometry{}, fmt.Errorf("%w: grayscale/FOURCC/nonstandard mode", ErrUnsupportedFormat)
	}
	for _, b := range []fbBitfield{v.Red, v.Green, v.Blue, v.Transp} {
		if b.MSBRight != 0 {
			return Geometry{}, fmt.Errorf("%w: bit-reversed channel", ErrUnsupportedFormat)
		}
	}
	g := Geometry{
		Width: int(v.XRes), Height: int(v.YRes),
		Stride:  int(f.LineLength),
		XOffset: int(v.XOffset), YOffset: int(v.YOffset),
		Format: PixelFormat{
			BitsPerPixel: v.BitsPerPixel,
			Red:          Channel{v.Red.Offset, v.Red.Length},
			Green:        Channel{v.Green.Offset, v.Green.Length},
			Blue:         Channel{v.Blue.Offset, v.Blue.Length},
			Transp:       Channel{v.Transp.Offset, v.Transp.Length},
		},
	}
	return g, g.Validate(int(f.SmemLen))
}
