package display

import (
	"image"
)

// Scene is everything on the screen. Two equal scenes draw identical frames,
// which is how the splash knows it need not redraw.
type Scene struct {
	Word    string // BOOTING, WIFI, DHCP, STARTING, READY, STOPPED, ...
	Status  string // the one-line human status (wraps)
	QR      string // the QR payload; empty means no code
	Caption string // under the code, or alone where the code would be
	Theme   Theme
}

// Limits that keep any input on screen and legible.
const (
	maxWordChars     = 24
	maxStatusLines   = 6
	maxStatusLinesQR = 3
	maxCaptionLines  = 2
	wordScaleFactor  = 3 // the word is this many times the text size
	marginUnits      = 6 // screen margin, in font pixels
	gapUnits         = 4 // space between blocks, in font pixels
	referenceWidth   = 320
	referenceHeight  = 240
)

// textScale picks the integer font scale for a screen: 2 at 640x480,
// 3 at 1280x800, 4 at 1920x1080, 9 at 3840x2160.
func textScale(w, h int) int {
	return max(1, min(w/referenceWidth, h/referenceHeight))
}

// Layout is where each block of a scene lands; Render draws it and tests
// check it against the screen.
type Layout struct {
	Scale      int
	WordScale  int
	Word       string
	WordAt     image.Point
	Status     []string
	StatusAt   []image.Point
	Caption    []string
	CaptionAt  []image.Point
	QRBits     [][]bool
	QRModule   int
	QRCard     image.Rectangle
	QRArea     image.Rectangle // the space the code was fitted into
	QRErr      error
	TextBounds image.Rectangle // the area text may occupy (inside margins)
}

// Plan lays out s on a w x h screen.
func Plan(s Scene, w, h int) Layout {
	sc := textScale(w, h)
	m := marginUnits * sc
	gap := gapUnits * sc
	inner := image.Rect(m, m, w-m, h-m)
	l := Layout{Scale: sc, TextBounds: inner}
	cols := inner.Dx() / textWidth(1, sc)

	word := sanitize(s.Word)
	if len(word) > maxWordChars {
		word = word[:maxWordChars]
	}
	l.Word = word
	l.WordScale = wordScaleFactor * sc
	for l.WordScale > 1 && textWidth(len(word), l.WordScale) > inner.Dx() {
		l.WordScale--
	}

	var qrErr error
	if s.QR != "" {
		l.QRBits, qrErr = qrMatrix(s.QR)
	}
	statusLines := maxStatusLines
	if l.QRBits != nil {
		statusLines = maxStatusLinesQR
	}
	l.Status = wrapText(sanitize(s.Status), cols, statusLines)
	l.Caption = wrapText(sanitize(s.Caption), cols, maxCaptionLines)

	wordH := 0
	if word != "" {
		wordH = lineHeight(l.WordScale)
	}
	statusH := len(l.Status) * lineHeight(sc)
	captionH := len(l.Caption) * lineHeight(sc)

	if l.QRBits != nil {
		// Text at the top, the code as large as what is left, caption under it.
		y := inner.Min.Y
		l.WordAt = centred(inner, word, l.WordScale, y)
		y += wordH + gap/2
		l.StatusAt = centredLines(inner, l.Status, sc, y)
		y += statusH + gap
		area := image.Rect(inner.Min.X, y, inner.Max.X, inner.Max.Y-captionH-gap/2)
		l.QRArea = area
		l.QRModule, l.QRCard, qrErr = qrLayout(len(l.QRBits), area)
		if qrErr == nil {
			l.CaptionAt = centredLines(inner, l.Caption, sc, l.QRCard.Max.Y+gap/2)
		} else {
			l.QRBits = nil
			l.CaptionAt = centredLines(inner, l.Caption, sc, area.Min.Y)
		}
	} else {
		// No code: one block a little above the middle, where eyes go first.
		blockH := wordH + gap + statusH
		if captionH > 0 {
			blockH += gap + captionH
		}
		y := inner.Min.Y + max(0, (inner.Dy()-blockH)*2/5)
		l.WordAt = centred(inner, word, l.WordScale, y)
		y += wordH + gap
		l.StatusAt = centredLines(inner, l.Status, sc, y)
		y += statusH + gap
		l.CaptionAt = centredLines(inner, l.Caption, sc, y)
	}
	l.QRErr = qrErr
	return l
}

func centred(inner image.Rectangle, line string, scale, y int) image.Point {
	return image.Pt(inner.Min.X+(inner.Dx()-textWidth(len(line), scale))/2, y)
}

func centredLines(inner image.Rectangle, lines []string, scale, y int) []image.Point {
	at := make([]image.Point, len(lines))
	for i, line := range lines {
		at[i] = centred(inner, line, scale, y+i*lineHeight(scale))
	}
	return at
}

// Render draws s onto dst (the whole screen). It always draws the text; the
// returned error says why a requested QR code is missing (ErrQREncode,
// ErrQRDoesNotFit), never that anything was drawn wrong.
func Render(dst *image.RGBA, s Scene) error {
	b := dst.Rect
	l := Plan(s, b.Dx(), b.Dy())
	th := s.Theme
	fillRect(dst, b, th.Background)
	drawText(dst, b.Min.X+l.WordAt.X, b.Min.Y+l.WordAt.Y, l.WordScale, th.Word, l.Word)
	for i, line := range l.Status {
		drawText(dst, b.Min.X+l.StatusAt[i].X, b.Min.Y+l.StatusAt[i].Y, l.Scale, th.Text, line)
	}
	if l.QRBits != nil {
		drawQR(dst, l.QRBits, l.QRModule, l.QRCard.Add(b.Min), th.Paper, th.Ink)
	}
	for i, line := range l.Caption {
		drawText(dst, b.Min.X+l.CaptionAt[i].X, b.Min.Y+l.CaptionAt[i].Y, l.Scale, th.Text, line)
	}
	return l.QRErr
}
