//go:build vmtest

package display

// Privileged tests for a real framebuffer. They are compiled with
// `go test -c -tags vmtest ./display` and run as root inside a QEMU guest
// (OVMF, -vga std: efifb) by the lead's harness; the host has no fb0.

import (
	"image"
	"os"
	"strconv"
	"strings"
	"testing"
)

func sysfsInt(t *testing.T, name string) []int {
	t.Helper()
	b, err := os.ReadFile("/sys/class/graphics/fb0/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, f := range strings.FieldsFunc(strings.TrimSpace(string(b)), func(r rune) bool { return r == ',' }) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("%s: %q", name, b)
		}
		out = append(out, n)
	}
	return out
}

// The geometry read through our ioctl structs agrees with what the kernel
// exports in sysfs, an independent path through the same driver.
func TestVMFramebufferGeometry(t *testing.T) {
	fb, err := OpenFramebuffer("/dev")
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	g := fb.Geometry()
	t.Logf("fb0: %dx%d stride %d offset %d,%d format %v", g.Width, g.Height, g.Stride, g.XOffset, g.YOffset, g.Format)
	virt := sysfsInt(t, "virtual_size")
	if len(virt) != 2 || g.Width > virt[0] || g.Height > virt[1] {
		t.Errorf("virtual_size %v vs %dx%d", virt, g.Width, g.Height)
	}
	if bpp := sysfsInt(t, "bits_per_pixel"); len(bpp) != 1 || uint32(bpp[0]) != g.Format.BitsPerPixel {
		t.Errorf("bits_per_pixel %v vs %d", bpp, g.Format.BitsPerPixel)
	}
	if stride := sysfsInt(t, "stride"); len(stride) != 1 || stride[0] != g.Stride {
		t.Errorf("stride %v vs %d", stride, g.Stride)
	}
}

// A READY frame written through the mmap reads back from the device memory
// and decodes to the URL.
func TestVMFramebufferDrawsDecodableQR(t *testing.T) {
	if err := (ConsoleSwitch{DevRoot: "/dev", SysRoot: "/sys"}).Off(); err != nil {
		t.Errorf("console off: %v", err)
	}
	fb, err := OpenFramebuffer("/dev")
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	url := "http://10.0.2.15:8734/"
	frame := image.NewRGBA(fb.Bounds())
	if err := Render(frame, Scene{Word: "READY", QR: url, Caption: "Running at " + url, Theme: ThemeCalm}); err != nil {
		t.Fatal(err)
	}
	if err := fb.Draw(frame); err != nil {
		t.Fatal(err)
	}
	if got := decodeQR(t, readBack(fb.mem, fb.Geometry())); got != url {
		t.Fatalf("decoded %q", got)
	}
}
