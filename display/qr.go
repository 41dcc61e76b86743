package display

import (
	"errors"
	"fmt"
	"image"
	"image/color"

	qrcode "github.com/skip2/go-qrcode"
)

// ErrQRDoesNotFit means the code would need modules smaller than one pixel
// on this screen; a shrunken code would be a wrong code, so none is drawn.
var ErrQRDoesNotFit = errors.New("QR code does not fit the screen")

// ErrQREncode means the payload cannot be encoded at all (longer than a
// version 40 code holds).
var ErrQREncode = errors.New("cannot encode QR code")

// quietZone is the 4-module margin of paper the QR standard requires.
const quietZone = 4

// qrLevel trades size for robustness: Medium (15%) keeps short URLs at
// version 2 or 3, big modules, easy for any phone.
const qrLevel = qrcode.Medium

// qrMatrix is the code's modules without a border, [y][x], true = dark.
// go-qrcode picks the smallest version the payload fits in, so a longer URL
// gets a larger version rather than a truncated code.
func qrMatrix(payload string) ([][]bool, error) {
	q, err := qrcode.New(payload, qrLevel)
	if err != nil {
		return nil, fmt.Errorf("%w (%d bytes): %v", ErrQREncode, len(payload), err)
	}
	// Must be set before the first encode, which Bitmap triggers; we draw
	// the quiet zone ourselves so its width is known exactly.
	q.DisableBorder = true
	return q.Bitmap(), nil
}

// qrLayout is where a code of n modules goes inside area: the largest
// integer module size whose code plus quiet zone fits, centred.
func qrLayout(n int, area image.Rectangle) (module int, card image.Rectangle, err error) {
	span := n + 2*quietZone
	module = min(area.Dx(), area.Dy()) / span
	if module < 1 {
		return 0, image.Rectangle{}, fmt.Errorf("%w: %d modules in %v", ErrQRDoesNotFit, span, area.Size())
	}
	side := span * module
	x := area.Min.X + (area.Dx()-side)/2
	y := area.Min.Y + (area.Dy()-side)/2
	return module, image.Rect(x, y, x+side, y+side), nil
}

// drawQR draws the code with its quiet zone on a paper card in card.
func drawQR(dst *image.RGBA, bits [][]bool, module int, card image.Rectangle, paper, ink color.RGBA) {
	fillRect(dst, card, paper)
	ox := card.Min.X + quietZone*module
	oy := card.Min.Y + quietZone*module
	for y, row := range bits {
		for x, dark := range row {
			if dark {
				fillRect(dst, image.Rect(ox+x*module, oy+y*module, ox+(x+1)*module, oy+(y+1)*module), ink)
			}
		}
	}
}
