package display

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"testing"
)

func TestPixelFormatValidate(t *testing.T) {
	ok := []PixelFormat{XRGB8888, XBGR8888, ARGB8888, RGB888, BGR888, RGB565,
		{BitsPerPixel: 32, Red: Channel{20, 10}, Green: Channel{10, 10}, Blue: Channel{0, 10}}, // XRGB2101010
		{BitsPerPixel: 16, Red: Channel{10, 5}, Green: Channel{5, 5}, Blue: Channel{0, 5}},     // XRGB1555
	}
	for _, f := range ok {
		if err := f.Validate(); err != nil {
			t.Errorf("%v: %v", f, err)
		}
	}
	bad := map[string]func(*PixelFormat){
		"8 bpp palette":       func(f *PixelFormat) { f.BitsPerPixel = 8 },
		"0 bpp":               func(f *PixelFormat) { f.BitsPerPixel = 0 },
		"red missing":         func(f *PixelFormat) { f.Red.Length = 0 },
		"blue past the pixel": func(f *PixelFormat) { f.Blue.Offset = 30 },
		"offset huge":         func(f *PixelFormat) { f.Green.Offset = 1 << 31 },
		"channel too wide":    func(f *PixelFormat) { f.Green.Length = 17 },
		"overlap":             func(f *PixelFormat) { f.Green.Offset = 12 },
		"alpha over red":      func(f *PixelFormat) { f.Transp = Channel{16, 8} },
	}
	for name, breakIt := range bad {
		f := XRGB8888
		breakIt(&f)
		if err := f.Validate(); !errors.Is(err, ErrUnsupportedFormat) {
			t.Errorf("%s: err = %v, want ErrUnsupportedFormat", name, err)
		}
	}
}

func efifbInfo() (fbVarScreenInfo, fbFixScreenInfo) {
	v := fbVarScreenInfo{XRes: 1280, YRes: 800, XResVirtual: 1280, YResVirtual: 800, BitsPerPixel: 32,
		Red: fbBitfield{Offset: 16, Length: 8}, Green: fbBitfield{Offset: 8, Length: 8}, Blue: fbBitfield{Length: 8}}
	f := fbFixScreenInfo{SmemLen: 1280 * 800 * 4, Type: fbTypePackedPixels, Visual: fbVisualTrueColor, LineLength: 1280 * 4}
	copy(f.ID[:], "EFI VGA")
	return v, f
}

func TestGeometryFromScreenInfo(t *testing.T) {
	v, f := efifbInfo()
	g, err := geometryFromScreenInfo(v, f)
	if err != nil {
		t.Fatal(err)
	}
	if g.Width != 1280 || g.Height != 800 || g.Stride != 5120 || g.Format != XRGB8888 {
		t.Errorf("geometry %+v", g)
	}
	if driverName(f) != "EFI VGA" {
		t.Errorf("driver %q", driverName(f))
	}
	cases := []struct {
		name  string
		fault func(*fbVarScreenInfo, *fbFixScreenInfo)
		want  error
	}{
		{"planar", func(_ *fbVarScreenInfo, f *fbFixScreenInfo) { f.Type = 1 }, ErrUnsupportedFormat},
		{"pseudocolour", func(_ *fbVarScreenInfo, f *fbFixScreenInfo) { f.Visual = 3 }, ErrUnsupportedFormat},
		{"grayscale", func(v *fbVarScreenInfo, _ *fbFixScreenInfo) { v.Grayscale = 1 }, ErrUnsupportedFormat},
		{"fourcc", func(v *fbVarScreenInfo, _ *fbFixScreenInfo) { v.Nonstd = 1 }, ErrUnsupportedFormat},
		{"msb right", func(v *fbVarScreenInfo, _ *fbFixScreenInfo) { v.Green.MSBRight = 1 }, ErrUnsupportedFormat},
		{"8 bpp", func(v *fbVarScreenInfo, _ *fbFixScreenInfo) { v.BitsPerPixel = 8 }, ErrUnsupportedFormat},
		{"stride too short", func(_ *fbVarScreenInfo, f *fbFixScreenInfo) { f.LineLength = 1280*4 - 1 }, ErrBadGeometry},
		{"memory too small", func(_ *fbVarScreenInfo, f *fbFixScreenInfo) { f.SmemLen-- }, ErrBadGeometry},
		{"yoffset past memory", func(v *fbVarScreenInfo, _ *fbFixScreenInfo) { v.YOffset = 1 }, ErrBadGeometry},
		{"xoffset past stride", func(v *fbVarScreenInfo, _ *fbFixScreenInfo) { v.XOffset = 1 }, ErrBadGeometry},
		{"zero width", func(v *fbVarScreenInfo, _ *fbFixScreenInfo) { v.XRes = 0 }, ErrBadGeometry},
		{"absurd height", func(v *fbVarScreenInfo, _ *fbFixScreenInfo) { v.YRes = 1 << 31 }, ErrBadGeometry},
		{"absurd offset", func(v *fbVarScreenInfo, _ *fbFixScreenInfo) { v.YOffset = 1 << 31 }, ErrBadGeometry},
	}
	for _, c := range cases {
		v, f := efifbInfo()
		c.fault(&v, &f)
		if _, err := geometryFromScreenInfo(v, f); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
}

// Every format turns every test colour into the pixel value computed by the
// independent float formula, at the right place in a padded, panned buffer.
func TestDrawPacksPixels(t *testing.T) {
	colours := []color.RGBA{{0, 0, 0, 255}, {255, 255, 255, 255}, {255, 0, 0, 255}, {0, 255, 0, 255},
		{0, 0, 255, 255}, {0x12, 0x22, 0x33, 255}, {0x80, 0x7f, 0x01, 255}, {0xc0, 0, 0, 255}}
	formats := map[string]PixelFormat{"XRGB8888": XRGB8888, "XBGR8888": XBGR8888, "ARGB8888": ARGB8888,
		"RGB888": RGB888, "BGR888": BGR888, "RGB565": RGB565,
		"XRGB2101010": {BitsPerPixel: 32, Red: Channel{20, 10}, Green: Channel{10, 10}, Blue: Channel{0, 10}},
		"XRGB1555":    {BitsPerPixel: 16, Red: Channel{10, 5}, Green: Channel{5, 5}, Blue: Channel{0, 5}},
	}
	for name, f := range formats {
		bpp := f.BytesPerPixel()
		geo := Geometry{Width: len(colours), Height: 3, XOffset: 2, YOffset: 1, Stride: (len(colours)+5)*bpp + 3, Format: f}
		mem := bytes.Repeat([]byte{0x5a}, geo.Stride*(geo.Height+geo.YOffset+1))
		fb, err := NewFramebuffer(mem, geo)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		img := image.NewRGBA(fb.Bounds())
		for y := range geo.Height {
			for x, c := range colours {
				img.SetRGBA(x, y, c)
			}
		}
		if err := fb.Draw(img); err != nil {
			t.Fatal(err)
		}
		assertOnlyVisibleBytesWritten(t, mem, geo, 0x5a)
		for y := range geo.Height {
			for x, c := range colours {
				off := (geo.YOffset+y)*geo.Stride + (geo.XOffset+x)*bpp
				var buf [4]byte
				copy(buf[:], mem[off:off+bpp])
				got := binary.LittleEndian.Uint32(buf[:])
				if want := packExpected(c, f); got != want {
					t.Errorf("%s: %v at (%d,%d) packed as %#x, want %#x", name, c, x, y, got, want)
				}
			}
		}
	}
}

func TestDrawRefusesWrongFrameSize(t *testing.T) {
	geo := Geometry{Width: 4, Height: 4, Stride: 16, Format: XRGB8888}
	fb, err := NewFramebuffer(make([]byte, 64), geo)
	if err != nil {
		t.Fatal(err)
	}
	if err := fb.Draw(image.NewRGBA(image.Rect(0, 0, 5, 4))); err == nil {
		t.Fatal("a frame larger than the screen was accepted")
	}
	if _, err := NewFramebuffer(make([]byte, 63), geo); !errors.Is(err, ErrBadGeometry) {
		t.Fatalf("short memory: err = %v", err)
	}
}
