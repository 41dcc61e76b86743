package display

import (
	"bytes"
	"fmt"
	"image"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The splash at the resolutions the appliance meets, in the pixel formats
// firmware hands out, drawn into fake framebuffer memory with a padded
// stride and a panned origin, then read back independently and decoded.
func TestGoldenScreensDecodeToURL(t *testing.T) {
	const url = "http://10.0.2.15:8734/"
	sizes := []struct{ w, h int }{{640, 480}, {1280, 800}, {3840, 2160}}
	formats := []struct {
		name string
		f    PixelFormat
	}{{"xrgb8888", XRGB8888}, {"bgr888", BGR888}, {"xbgr8888", XBGR8888}, {"rgb565", RGB565}}
	scene := Scene{Word: "READY", Status: "Service healthy.", QR: url, Caption: "Running at " + url, Theme: ThemeCalm}
	for _, sz := range sizes {
		for _, fm := range formats {
			name := fmt.Sprintf("%dx%d-%s", sz.w, sz.h, fm.name)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				bpp := fm.f.BytesPerPixel()
				geo := Geometry{Width: sz.w, Height: sz.h, Stride: (sz.w+24)*bpp + 8, XOffset: 16, YOffset: 3, Format: fm.f}
				mem := bytes.Repeat([]byte{0xa5}, geo.Stride*(sz.h+geo.YOffset+2))
				fb, err := NewFramebuffer(mem, geo)
				if err != nil {
					t.Fatal(err)
				}
				frame := image.NewRGBA(fb.Bounds())
				if err := Render(frame, scene); err != nil {
					t.Fatalf("Render: %v", err)
				}
				if err := fb.Draw(frame); err != nil {
					t.Fatal(err)
				}
				assertOnlyVisibleBytesWritten(t, mem, geo, 0xa5)
				shown := readBack(mem, geo)
				maybeWritePNG(t, name, shown)
				if got := decodeQR(t, shown); got != url {
					t.Fatalf("QR decodes to %q, want %q", got, url)
				}
				l := Plan(scene, sz.w, sz.h)
				screen := image.Rect(0, 0, sz.w, sz.h)
				if !l.QRCard.In(l.QRArea) || !l.QRArea.In(screen) {
					t.Errorf("QR card %v not inside its area %v on %v", l.QRCard, l.QRArea, screen)
				}
				// As large as the screen allows: one more pixel per module
				// would no longer fit the area the layout set aside.
				if span := (len(l.QRBits) + 2*quietZone) * (l.QRModule + 1); span <= l.QRArea.Dx() && span <= l.QRArea.Dy() {
					t.Errorf("module %d px leaves room for a larger code (%d px fits %v)", l.QRModule, span, l.QRArea.Size())
				}
				// The code is the main thing: it takes most of the height.
				if l.QRCard.Dy() < sz.h/2 {
					t.Errorf("QR card only %d px high on a %d px screen", l.QRCard.Dy(), sz.h)
				}
				// The URL line sits under the code, on screen.
				if len(l.CaptionAt) != 1 || l.CaptionAt[0].Y < l.QRCard.Max.Y || l.CaptionAt[0].Y+lineHeight(l.Scale) > sz.h {
					t.Errorf("caption at %v, card %v, screen height %d", l.CaptionAt, l.QRCard, sz.h)
				}
			})
		}
	}
}

// assertOnlyVisibleBytesWritten checks that stride padding, the panned-away
// columns and rows, and everything past the screen still hold the fill.
func assertOnlyVisibleBytesWritten(t *testing.T, mem []byte, g Geometry, fill byte) {
	t.Helper()
	bpp := g.Format.BytesPerPixel()
	untouched := func(from, to int) bool {
		for _, b := range mem[from:to] {
			if b != fill {
				return false
			}
		}
		return true
	}
	lines := (len(mem) + g.Stride - 1) / g.Stride
	for y := range lines {
		start, end := y*g.Stride, min((y+1)*g.Stride, len(mem))
		if y < g.YOffset || y >= g.YOffset+g.Height {
			if !untouched(start, end) {
				t.Fatalf("line %d is outside the visible area but was written", y)
			}
			continue
		}
		if !untouched(start, start+g.XOffset*bpp) {
			t.Fatalf("line %d: panned-away columns before xoffset were written", y)
		}
		if !untouched(start+(g.XOffset+g.Width)*bpp, end) {
			t.Fatalf("line %d: stride padding was written", y)
		}
	}
}

// zbarimg, a second independent decoder, reads a PNG of the real output.
func TestZbarimgDecodesSplash(t *testing.T) {
	const url = "http://192.168.178.23:8734/"
	geo := Geometry{Width: 1280, Height: 800, Stride: 1280 * 4, Format: XRGB8888}
	mem := make([]byte, geo.Stride*geo.Height)
	fb, err := NewFramebuffer(mem, geo)
	if err != nil {
		t.Fatal(err)
	}
	frame := image.NewRGBA(fb.Bounds())
	if err := Render(frame, Scene{Word: "READY", QR: url, Caption: "Running at " + url, Theme: ThemeCalm}); err != nil {
		t.Fatal(err)
	}
	if err := fb.Draw(frame); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "splash.png")
	writePNG(t, path, readBack(mem, geo))
	out, err := exec.Command("zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", path).Output()
	if err != nil {
		t.Fatalf("zbarimg: %v", err)
	}
	if got := strings.TrimRight(string(out), "\n"); got != url {
		t.Fatalf("zbarimg read %q, want %q", got, url)
	}
}

// A long URL needs a larger QR version; the code must still be exact.
func TestLongURLUsesLargerVersion(t *testing.T) {
	short := "http://10.0.2.15:8734/"
	long := "http://[2001:db8:1234:5678:9abc:def0:1234:5678]:8734/" + strings.Repeat("x", 120)
	shortBits, err := qrMatrix(short)
	if err != nil {
		t.Fatal(err)
	}
	longBits, err := qrMatrix(long)
	if err != nil {
		t.Fatal(err)
	}
	if len(longBits) <= len(shortBits) {
		t.Fatalf("long URL got %d modules, short %d", len(longBits), len(shortBits))
	}
	frame := image.NewRGBA(image.Rect(0, 0, 640, 480))
	if err := Render(frame, Scene{Word: "READY", QR: long, Caption: long, Theme: ThemeCalm}); err != nil {
		t.Fatal(err)
	}
	maybeWritePNG(t, "long-url", frame)
	if got := decodeQR(t, frame); got != long {
		t.Fatalf("decoded %q, want %q", got, long)
	}
}

func TestQRTooLongOrTooBigIsRefusedNotShrunk(t *testing.T) {
	huge := strings.Repeat("a", 4000) // past version 40 at level M
	frame := image.NewRGBA(image.Rect(0, 0, 640, 480))
	if err := Render(frame, Scene{Word: "READY", QR: huge, Theme: ThemeCalm}); !errorsIs(err, ErrQREncode) {
		t.Errorf("huge payload: err = %v, want ErrQREncode", err)
	}
	tiny := image.NewRGBA(image.Rect(0, 0, 40, 30))
	if err := Render(tiny, Scene{Word: "READY", QR: "http://10.0.2.15:8734/", Theme: ThemeCalm}); !errorsIs(err, ErrQRDoesNotFit) {
		t.Errorf("tiny screen: err = %v, want ErrQRDoesNotFit", err)
	}
	// Neither case may leave any paper-white module pattern on screen.
	for _, img := range []*image.RGBA{frame, tiny} {
		for i := 0; i < len(img.Pix); i += 4 {
			if img.Pix[i] == 0xff && img.Pix[i+1] == 0xff && img.Pix[i+2] == 0xff {
				t.Fatalf("paper white pixel drawn although no code fits")
			}
		}
	}
}

// Screens without a code: booting and stopped, with a long status that
// wraps, at every size. The theme fills the screen; text stays inside the
// margins; nothing looks like a code.
func TestStatusScreens(t *testing.T) {
	status := "Boot stopped: HyperBEAM exited with status 1. The node is parked; power it off to try again. Logs: /run/lapee/status \x1b[31m Grüße"
	scenes := map[string]Scene{
		"booting": {Word: "BOOTING", Status: "Looking for the boot USB (round 3 of 10).", Theme: ThemeCalm},
		"stopped": {Word: WordStopped, Status: status, Theme: ThemeStopped},
		"nonet":   {Word: "READY", Status: "Service healthy.", Caption: NoNetworkCaption, Theme: ThemeCalm},
	}
	for _, sz := range []image.Point{{640, 480}, {1280, 800}, {3840, 2160}} {
		for name, scene := range scenes {
			frame := image.NewRGBA(image.Rect(0, 0, sz.X, sz.Y))
			if err := Render(frame, scene); err != nil {
				t.Fatal(err)
			}
			maybeWritePNG(t, fmt.Sprintf("%s-%dx%d", name, sz.X, sz.Y), frame)
			l := Plan(scene, sz.X, sz.Y)
			background, paper := 0, 0
			for i := 0; i < len(frame.Pix); i += 4 {
				px := frame.Pix[i : i+3 : i+3]
				bg := scene.Theme.Background
				if px[0] == bg.R && px[1] == bg.G && px[2] == bg.B {
					background++
				}
				if px[0] == 0xff && px[1] == 0xff && px[2] == 0xff && scene.Theme.Text.R != 0xff {
					paper++
				}
			}
			if background < sz.X*sz.Y*8/10 {
				t.Errorf("%s %v: only %d of %d pixels are the %s background", name, sz, background, sz.X*sz.Y, scene.Theme.Name)
			}
			if paper != 0 {
				t.Errorf("%s %v: %d paper pixels without a code", name, sz, paper)
			}
			wordBox := image.Rect(l.WordAt.X, l.WordAt.Y, l.WordAt.X+textWidth(len(l.Word), l.WordScale), l.WordAt.Y+lineHeight(l.WordScale))
			if !wordBox.In(l.TextBounds) {
				t.Errorf("%s %v: word box %v outside %v", name, sz, wordBox, l.TextBounds)
			}
			last := l.StatusAt[len(l.StatusAt)-1].Y + lineHeight(l.Scale)
			if len(l.CaptionAt) > 0 {
				last = l.CaptionAt[len(l.CaptionAt)-1].Y + lineHeight(l.Scale)
			}
			if last > l.TextBounds.Max.Y {
				t.Errorf("%s %v: text runs to y=%d, bound %d", name, sz, last, l.TextBounds.Max.Y)
			}
		}
	}
}
