package harness

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// ErrNoQR means no QR code could be read from the screen.
var ErrNoQR = errors.New("harness: no QR code on the screen")

// Screen captures the VM's screen as an image.
func (vm *VM) Screen() (*image.RGBA, error) {
	dir, err := os.MkdirTemp("", "inert-screen-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "screen.png")
	if err := vm.Screendump(path); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("harness: screen: %w", err)
	}
	rgba, ok := img.(*image.RGBA)
	if !ok {
		b := img.Bounds()
		rgba = image.NewRGBA(b)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				rgba.Set(x, y, img.At(x, y))
			}
		}
	}
	return rgba, nil
}

// DecodeQR reads the QR code in img with gozxing, a decoder independent of
// the encoder the splash uses.
func DecodeQR(img image.Image) (string, error) {
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoQR, err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoQR, err)
	}
	return res.GetText(), nil
}

// AwaitQR takes screendumps until one holds a readable QR code or ctx ends
// (the splash draws the code a probe interval after the service answers).
// It returns the text and the screen it was read from.
func (vm *VM) AwaitQR(ctx context.Context) (string, *image.RGBA, error) {
	var last *image.RGBA
	lastErr := ErrNoQR
	for {
		img, err := vm.Screen()
		if err == nil {
			last = img
			text, derr := DecodeQR(img)
			if derr == nil {
				return text, img, nil
			}
			lastErr = derr
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return "", last, fmt.Errorf("awaiting a QR code: %w (last: %v)", ctx.Err(), lastErr)
		case <-vm.Done():
			return "", last, ErrVMExited
		case <-time.After(time.Second): // the screen has no change notification
		}
	}
}
