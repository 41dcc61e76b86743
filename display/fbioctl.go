package display

// The framebuffer ABI from <linux/fb.h> and <linux/kd.h>. x/sys/unix has
// neither the structs nor the request numbers, so they are spelled out here
// and checked against the C headers by fbioctl_test.go (which compiles a C
// program with the real headers and compares sizes, offsets and values).

// Request numbers and constants, as in the kernel's uapi headers.
const (
	ioctlFBIOGetVScreenInfo = 0x4600 // FBIOGET_VSCREENINFO
	ioctlFBIOGetFScreenInfo = 0x4602 // FBIOGET_FSCREENINFO
	ioctlKDSetMode          = 0x4B3A // KDSETMODE
	kdText                  = 0x00   // KD_TEXT
	kdGraphics              = 0x01   // KD_GRAPHICS

	fbTypePackedPixels = 0 // FB_TYPE_PACKED_PIXELS
	fbVisualTrueColor  = 2 // FB_VISUAL_TRUECOLOR
)

// fbBitfield is struct fb_bitfield: where one colour channel sits in a pixel.
type fbBitfield struct {
	Offset   uint32
	Length   uint32
	MSBRight uint32
}

// fbVarScreenInfo is struct fb_var_screeninfo (160 bytes).
type fbVarScreenInfo struct {
	XRes, YRes               uint32
	XResVirtual, YResVirtual uint32
	XOffset, YOffset         uint32
	BitsPerPixel             uint32
	Grayscale                uint32
	Red, Green, Blue, Transp fbBitfield
	Nonstd                   uint32
	Activate                 uint32
	Height, Width            uint32
	AccelFlags               uint32
	PixClock                 uint32
	LeftMargin, RightMargin  uint32
	UpperMargin, LowerMargin uint32
	HSyncLen, VSyncLen       uint32
	Sync                     uint32
	VMode                    uint32
	Rotate                   uint32
	Colorspace               uint32
	Reserved                 [4]uint32
}

// fbFixScreenInfo is struct fb_fix_screeninfo (80 bytes on 64-bit). C's
// unsigned long is pointer sized on Linux, hence uintptr.
type fbFixScreenInfo struct {
	ID           [16]byte
	SmemStart    uintptr
	SmemLen      uint32
	Type         uint32
	TypeAux      uint32
	Visual       uint32
	XPanStep     uint16
	YPanStep     uint16
	YWrapStep    uint16
	LineLength   uint32
	MMIOStart    uintptr
	MMIOLen      uint32
	Accel        uint32
	Capabilities uint16
	Reserved     [2]uint16
}
