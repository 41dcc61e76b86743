package display

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// cLayoutProgram prints, from the real kernel headers, every number the Go
// definitions in fbioctl.go must agree with.
const cLayoutProgram = `#include <stdio.h>
#include <stddef.h>
#include <linux/fb.h>
#include <linux/kd.h>
#define P(name, v) printf("%s %lu\n", name, (unsigned long)(v))
#define V(f) P("var." #f, offsetof(struct fb_var_screeninfo, f))
#define F(f) P("fix." #f, offsetof(struct fb_fix_screeninfo, f))
int main(void) {
	P("sizeof.var", sizeof(struct fb_var_screeninfo));
	P("sizeof.fix", sizeof(struct fb_fix_screeninfo));
	P("sizeof.bitfield", sizeof(struct fb_bitfield));
	V(xres); V(yres); V(xres_virtual); V(yres_virtual); V(xoffset); V(yoffset);
	V(bits_per_pixel); V(grayscale); V(red); V(green); V(blue); V(transp);
	V(nonstd); V(activate); V(height); V(width); V(accel_flags); V(pixclock);
	V(left_margin); V(right_margin); V(upper_margin); V(lower_margin);
	V(hsync_len); V(vsync_len); V(sync); V(vmode); V(rotate); V(colorspace); V(reserved);
	F(id); F(smem_start); F(smem_len); F(type); F(type_aux); F(visual);
	F(xpanstep); F(ypanstep); F(ywrapstep); F(line_length); F(mmio_start);
	F(mmio_len); F(accel); F(capabilities); F(reserved);
	P("bitfield.offset", offsetof(struct fb_bitfield, offset));
	P("bitfield.length", offsetof(struct fb_bitfield, length));
	P("bitfield.msb_right", offsetof(struct fb_bitfield, msb_right));
	P("FBIOGET_VSCREENINFO", FBIOGET_VSCREENINFO);
	P("FBIOGET_FSCREENINFO", FBIOGET_FSCREENINFO);
	P("KDSETMODE", KDSETMODE);
	P("KD_TEXT", KD_TEXT);
	P("KD_GRAPHICS", KD_GRAPHICS);
	P("FB_TYPE_PACKED_PIXELS", FB_TYPE_PACKED_PIXELS);
	P("FB_VISUAL_TRUECOLOR", FB_VISUAL_TRUECOLOR);
	return 0;
}
`

// cLayout compiles and runs cLayoutProgram with the system C compiler
// (gcc and linux-libc-dev: scripts/deps.sh installs both).
func cLayout(t *testing.T) map[string]uintptr {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "layout.c")
	bin := filepath.Join(dir, "layout")
	if err := os.WriteFile(src, []byte(cLayoutProgram), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("gcc", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("run layout program: %v", err)
	}
	got := map[string]uintptr{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		n, err := strconv.ParseUint(value, 10, 64)
		if !ok || err != nil {
			t.Fatalf("bad line %q", sc.Text())
		}
		got[name] = uintptr(n)
	}
	return got
}

func TestScreenInfoLayoutMatchesKernelHeaders(t *testing.T) {
	c := cLayout(t)
	var v fbVarScreenInfo
	var f fbFixScreenInfo
	var b fbBitfield
	goLayout := map[string]uintptr{
		"sizeof.var":      unsafe.Sizeof(v),
		"sizeof.fix":      unsafe.Sizeof(f),
		"sizeof.bitfield": unsafe.Sizeof(b),

		"var.xres": unsafe.Offsetof(v.XRes), "var.yres": unsafe.Offsetof(v.YRes),
		"var.xres_virtual": unsafe.Offsetof(v.XResVirtual), "var.yres_virtual": unsafe.Offsetof(v.YResVirtual),
		"var.xoffset": unsafe.Offsetof(v.XOffset), "var.yoffset": unsafe.Offsetof(v.YOffset),
		"var.bits_per_pixel": unsafe.Offsetof(v.BitsPerPixel), "var.grayscale": unsafe.Offsetof(v.Grayscale),
		"var.red": unsafe.Offsetof(v.Red), "var.green": unsafe.Offsetof(v.Green),
		"var.blue": unsafe.Offsetof(v.Blue), "var.transp": unsafe.Offsetof(v.Transp),
		"var.nonstd": unsafe.Offsetof(v.Nonstd), "var.activate": unsafe.Offsetof(v.Activate),
		"var.height": unsafe.Offsetof(v.Height), "var.width": unsafe.Offsetof(v.Width),
		"var.accel_flags": unsafe.Offsetof(v.AccelFlags), "var.pixclock": unsafe.Offsetof(v.PixClock),
		"var.left_margin": unsafe.Offsetof(v.LeftMargin), "var.right_margin": unsafe.Offsetof(v.RightMargin),
		"var.upper_margin": unsafe.Offsetof(v.UpperMargin), "var.lower_margin": unsafe.Offsetof(v.LowerMargin),
		"var.hsync_len": unsafe.Offsetof(v.HSyncLen), "var.vsync_len": unsafe.Offsetof(v.VSyncLen),
		"var.sync": unsafe.Offsetof(v.Sync), "var.vmode": unsafe.Offsetof(v.VMode),
		"var.rotate": unsafe.Offsetof(v.Rotate), "var.colorspace": unsafe.Offsetof(v.Colorspace),
		"var.reserved": unsafe.Offsetof(v.Reserved),

		"fix.id": unsafe.Offsetof(f.ID), "fix.smem_start": unsafe.Offsetof(f.SmemStart),
		"fix.smem_len": unsafe.Offsetof(f.SmemLen), "fix.type": unsafe.Offsetof(f.Type),
		"fix.type_aux": unsafe.Offsetof(f.TypeAux), "fix.visual": unsafe.Offsetof(f.Visual),
		"fix.xpanstep": unsafe.Offsetof(f.XPanStep), "fix.ypanstep": unsafe.Offsetof(f.YPanStep),
		"fix.ywrapstep": unsafe.Offsetof(f.YWrapStep), "fix.line_length": unsafe.Offsetof(f.LineLength),
		"fix.mmio_start": unsafe.Offsetof(f.MMIOStart), "fix.mmio_len": unsafe.Offsetof(f.MMIOLen),
		"fix.accel": unsafe.Offsetof(f.Accel), "fix.capabilities": unsafe.Offsetof(f.Capabilities),
		"fix.reserved": unsafe.Offsetof(f.Reserved),

		"bitfield.offset": unsafe.Offsetof(b.Offset), "bitfield.length": unsafe.Offsetof(b.Length),
		"bitfield.msb_right": unsafe.Offsetof(b.MSBRight),

		"FBIOGET_VSCREENINFO":   ioctlFBIOGetVScreenInfo,
		"FBIOGET_FSCREENINFO":   ioctlFBIOGetFScreenInfo,
		"KDSETMODE":             ioctlKDSetMode,
		"KD_TEXT":               kdText,
		"KD_GRAPHICS":           kdGraphics,
		"FB_TYPE_PACKED_PIXELS": fbTypePackedPixels,
		"FB_VISUAL_TRUECOLOR":   fbVisualTrueColor,
	}
	if len(c) != len(goLayout) {
		t.Errorf("C program printed %d values, Go side checks %d", len(c), len(goLayout))
	}
	for name, want := range c {
		got, ok := goLayout[name]
		if !ok {
			t.Errorf("%s: not checked on the Go side", name)
			continue
		}
		if got != want {
			t.Errorf("%s: Go %d, C %d", name, got, want)
		}
	}
}
