package harness

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// ErrBadPPM means a screendump is not a binary PPM (P6) we can read.
var ErrBadPPM = errors.New("harness: bad PPM")

// maxPPMPixels bounds a screendump: 8K by 8K is far beyond any VGA mode.
const maxPPMPixels = 8192 * 8192

// Screendump saves the VM's screen to path as PNG (QMP screendump writes a
// PPM, which is converted here).
func (vm *VM) Screendump(path string) error {
	ppm := path + ".ppm"
	abs, err := filepath.Abs(ppm)
	if err != nil {
		return err
	}
	if _, err := vm.QMP("screendump", map[string]any{"filename": abs}); err != nil {
		return err
	}
	defer os.Remove(abs)
	data, err := os.ReadFile(abs)
	if err != nil {
		return fmt.Errorf("harness: screendump: %w", err)
	}
	img, err := DecodePPM(bytes.NewReader(data))
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("harness: screendump png: %w", err)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// DecodePPM reads a binary PPM (P6, maxval 1..255).
func DecodePPM(r io.Reader) (*image.RGBA, error) {
	br := bufio.NewReader(r)
	magic, err := ppmToken(br)
	if err != nil || magic != "P6" {
		return nil, fmt.Errorf("%w: magic %q", ErrBadPPM, magic)
	}
	var header [3]int // width, height, maxval
	for i := range header {
		tok, err := ppmToken(br)
		if err != nil {
			return nil, fmt.Errorf("%w: header: %v", ErrBadPPM, err)
		}
		n, err := strconv.Atoi(tok)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%w: header field %q", ErrBadPPM, tok)
		}
		header[i] = n
	}
	w, h, maxval := header[0], header[1], header[2]
	if maxval > 255 {
		return nil, fmt.Errorf("%w: maxval %d (16-bit PPM unsupported)", ErrBadPPM, maxval)
	}
	if w > maxPPMPixels/h {
		return nil, fmt.Errorf("%w: %dx%d too large", ErrBadPPM, w, h)
	}
	pix := make([]byte, w*h*3)
	if _, err := io.ReadFull(br, pix); err != nil {
		return nil, fmt.Errorf("%w: pixels: %v", ErrBadPPM, err)
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < w*h; i++ {
		img.Pix[4*i+0] = scale(pix[3*i+0], maxval)
		img.Pix[4*i+1] = scale(pix[3*i+1], maxval)
		img.Pix[4*i+2] = scale(pix[3*i+2], maxval)
		img.Pix[4*i+3] = 0xff
	}
	return img, nil
}

// scale maps a sample in 0..maxval to 0..255 (samples above maxval saturate).
func scale(v byte, maxval int) byte {
	if int(v) >= maxval {
		return 0xff
	}
	return byte(int(v) * 255 / maxval)
}

// ppmToken returns the next whitespace-separated header token, skipping
// '#' comments, and consumes the single whitespace byte after it.
func ppmToken(br *bufio.Reader) (string, error) {
	var tok []byte
	for {
		c, err := br.ReadByte()
		if err != nil {
			if len(tok) > 0 && err == io.EOF {
				return string(tok), nil
			}
			return "", err
		}
		switch {
		case c == '#' && len(tok) == 0:
			if _, err := br.ReadBytes('\n'); err != nil {
				return "", err
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if len(tok) > 0 {
				return string(tok), nil
			}
		default:
			if len(tok) >= 16 {
				return "", fmt.Errorf("%w: header token too long", ErrBadPPM)
			}
			tok = append(tok, c)
		}
	}
}
