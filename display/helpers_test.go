package display

import (
	"encoding/binary"
	"errors"
	"flag"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/makiuchi-d/gozxing"
	gozxingqr "github.com/makiuchi-d/gozxing/qrcode"
)

// go test ./display -args -png=DIR writes the rendered screens as PNGs so a
// person can look at them.
var pngDir = flag.String("png", "", "write rendered test screens as PNGs into this directory")

func maybeWritePNG(t *testing.T, name string, img image.Image) {
	t.Helper()
	if *pngDir == "" {
		return
	}
	writePNG(t, filepath.Join(*pngDir, name+".png"), img)
}

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// readBack decodes framebuffer memory into an image with a second,
// deliberately different implementation from Framebuffer.Draw: pixel by
// pixel, channel values scaled back with floating point.
func readBack(mem []byte, g Geometry) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, g.Width, g.Height))
	bpp := int(g.Format.BitsPerPixel / 8)
	for y := range g.Height {
		for x := range g.Width {
			off := (g.YOffset+y)*g.Stride + (g.XOffset+x)*bpp
			var buf [4]byte
			copy(buf[:], mem[off:off+bpp])
			p := binary.LittleEndian.Uint32(buf[:])
			i := img.PixOffset(x, y)
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = expand(p, g.Format.Red), expand(p, g.Format.Green), expand(p, g.Format.Blue), 0xff
		}
	}
	return img
}

func expand(p uint32, c Channel) uint8 {
	maxV := float64(uint64(1)<<c.Length - 1)
	v := float64((p >> c.Offset) & uint32(maxV))
	return uint8(math.Round(v * 255 / maxV))
}

// packExpected is the pixel value a colour must become, computed
// independently of the lookup tables in framebuffer.go.
func packExpected(c color.RGBA, f PixelFormat) uint32 {
	ch := func(v uint8, c Channel) uint32 {
		maxV := float64(uint64(1)<<c.Length - 1)
		return uint32(math.Round(float64(v)/255*maxV)) << c.Offset
	}
	p := ch(c.R, f.Red) | ch(c.G, f.Green) | ch(c.B, f.Blue)
	if f.Transp.Length > 0 {
		p |= uint32(uint64(1)<<f.Transp.Length-1) << f.Transp.Offset
	}
	return p
}

// decodeQR reads a QR code from img with gozxing, an independent decoder.
func decodeQR(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatalf("gozxing bitmap: %v", err)
	}
	res, err := gozxingqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("gozxing could not decode a QR code: %v", err)
	}
	return res.GetText()
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
