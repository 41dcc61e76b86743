package display

import (
	"image"
	"image/color"
	"strings"
	"unicode/utf8"
)

// maxTextBytes bounds how much of any one string the splash looks at, so a
// runaway status line costs nothing.
const maxTextBytes = 4096

// sanitize maps text onto the font: printable ASCII stays, tabs and line
// breaks become spaces (the layout decides where lines break), other control
// characters become '?', and everything else (other scripts, invalid UTF-8)
// becomes the box glyph. Nothing reaches the screen that the font cannot draw.
func sanitize(s string) string {
	if len(s) > maxTextBytes {
		s = s[:maxTextBytes]
	}
	var b strings.Builder
	b.Grow(len(s))
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		switch {
		case r >= ' ' && r < 0x7f:
			b.WriteByte(byte(r))
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		case r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0):
			b.WriteByte('?')
		default: // includes utf8.RuneError for invalid bytes
			b.WriteByte(boxGlyph)
		}
	}
	return b.String()
}

// wrapText breaks sanitised text into at most maxLines lines of at most cols
// characters, at spaces where it can and inside a word where it must. Text
// that does not fit ends in "...".
func wrapText(s string, cols, maxLines int) []string {
	if cols <= 0 || maxLines <= 0 {
		return nil
	}
	var lines []string
	var cur []byte
	flush := func() {
		lines = append(lines, string(cur))
		cur = cur[:0]
	}
	for _, word := range strings.Fields(s) {
		for len(word) > 0 {
			switch {
			case len(cur) > 0 && len(cur)+1+len(word) <= cols:
				cur = append(append(cur, ' '), word...)
				word = ""
			case len(cur) > 0:
				flush()
			case len(word) <= cols:
				cur = append(cur, word...)
				word = ""
			default: // a word longer than a whole line
				cur = append(cur, word[:cols]...)
				word = word[cols:]
				flush()
			}
		}
	}
	if len(cur) > 0 {
		flush()
	}
	if len(lines) > maxLines {
		last := lines[maxLines-1]
		if cols >= 3 {
			if len(last) > cols-3 {
				last = last[:cols-3]
			}
			last += "..."
		}
		lines = append(lines[:maxLines-1], last)
	}
	return lines
}

// textWidth is the width in pixels of n characters at scale.
func textWidth(n, scale int) int { return n * glyphCellW * scale }

// lineHeight is the height in pixels of one text line at scale.
func lineHeight(scale int) int { return glyphCellH * scale }

// drawText draws one line of sanitised text with its cell's top-left corner
// at (x, y). Pixels outside dst's bounds are clipped, never written.
func drawText(dst *image.RGBA, x, y, scale int, ink color.RGBA, line string) {
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c < ' ' || c > boxGlyph {
			c = boxGlyph
		}
		drawGlyph(dst, x+textWidth(i, scale), y+scale, scale, ink, &font[c])
	}
}

func drawGlyph(dst *image.RGBA, x, y, scale int, ink color.RGBA, g *glyph) {
	for row, bits := range g {
		if bits == 0 {
			continue
		}
		for col := range glyphW {
			if bits&(1<<(glyphW-1-col)) != 0 {
				fillRect(dst, image.Rect(x+col*scale, y+row*scale, x+(col+1)*scale, y+(row+1)*scale), ink)
			}
		}
	}
}

// fillRect paints r (clipped to dst) in c.
func fillRect(dst *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(dst.Rect)
	if r.Empty() {
		return
	}
	w := r.Dx() * 4
	first := dst.PixOffset(r.Min.X, r.Min.Y)
	row := dst.Pix[first : first+w]
	for i := 0; i < w; i += 4 {
		row[i], row[i+1], row[i+2], row[i+3] = c.R, c.G, c.B, c.A
	}
	for y := r.Min.Y + 1; y < r.Max.Y; y++ {
		off := dst.PixOffset(r.Min.X, y)
		copy(dst.Pix[off:off+w], row)
	}
}
