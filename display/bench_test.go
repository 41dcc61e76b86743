package display

import (
	"image"
	"testing"
)

// BenchmarkFullFrame1920x1080 is a READY frame with its QR code rendered
// and copied into 1080p XRGB8888 framebuffer memory: the cost of one redraw.
func BenchmarkFullFrame1920x1080(b *testing.B) {
	geo := Geometry{Width: 1920, Height: 1080, Stride: 1920 * 4, Format: XRGB8888}
	fb, err := NewFramebuffer(make([]byte, geo.Stride*geo.Height), geo)
	if err != nil {
		b.Fatal(err)
	}
	frame := image.NewRGBA(fb.Bounds())
	url := "http://10.0.2.15:8734/"
	scene := Scene{Word: "READY", Status: "HyperBEAM answers its health probe.", QR: url, Caption: "Running at " + url, Theme: ThemeCalm}
	b.ReportAllocs()
	for b.Loop() {
		if err := Render(frame, scene); err != nil {
			b.Fatal(err)
		}
		if err := fb.Draw(frame); err != nil {
			b.Fatal(err)
		}
	}
}
