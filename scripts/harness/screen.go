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

// AwaitScreen takes screendumps until one satisfies match, or ctx ends, or
// the VM exits; it returns the last screen it took. The screen has no change
// notification, so this polls once a second.
func (vm *VM) AwaitScreen(ctx context.Context, match func(*image.RGBA) bool) (*image.RGBA, error) {
	var last *image.RGBA
	var lastErr error
	for {
		img, err := vm.Screen()
		if err == nil {
			last = img
			if match(img) {
				return img, nil
			}
		}
		lastErr = err
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return last, fmt.Errorf("awaiting the screen: %w (last: %v)", ctx.Err(), lastErr)
			}
			return last, fmt.Errorf("awaiting the screen: %w", ctx.Err())
		case <-vm.Done():
			return last, ErrVMExited
		case <-time.After(time.Second):
		}
	}
}

// AwaitQR waits until the screen holds a readable QR code (the splash draws
// it a probe interval after the service answers) and returns its text and
// the screen it was read from.
func (vm *VM) AwaitQR(ctx context.Context) (string, *image.RGBA, error) {
	var text string
	lastErr := ErrNoQR
	img, err := vm.AwaitScreen(ctx, func(img *image.RGBA) bool {
		t, derr := DecodeQR(img)
		text, lastErr = t, derr
		return derr == nil
	})
	if err != nil {
		return "", img, fmt.Errorf("%w (last decode: %v)", err, lastErr)
	}
	return text, img, nil
}
