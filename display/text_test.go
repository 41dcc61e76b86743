package display

import (
	"image"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFontCoversPrintableASCII(t *testing.T) {
	if _, err := parseFont(glyphSource); err != nil {
		t.Fatal(err)
	}
	seen := map[glyph]byte{}
	for c := byte('!'); c <= boxGlyph; c++ {
		g := font[c]
		if g == (glyph{}) {
			t.Errorf("glyph %q is blank", c)
		}
		if other, dup := seen[g]; dup {
			t.Errorf("glyphs %q and %q are identical", other, c)
		}
		seen[g] = c
	}
	if font[' '] != (glyph{}) {
		t.Error("space has ink")
	}
	broken := map[byte]string{}
	for k, v := range glyphSource {
		broken[k] = v
	}
	broken['A'] = "..#.. .#.#."
	if _, err := parseFont(broken); err == nil {
		t.Error("a 2-row glyph was accepted")
	}
	delete(broken, 'A')
	if _, err := parseFont(broken); err == nil {
		t.Error("a missing glyph was accepted")
	}
}

func TestSanitize(t *testing.T) {
	cases := []struct{ in, want string }{
		{"Boot USB was not found.", "Boot USB was not found."},
		{"a\tb\nc\rd", "a b c d"},
		{"bell\a esc\x1b[2J del\x7f", "bell? esc?[2J del?"},
		{"c1 \u0085 \u009b", "c1 ? ?"},
		{"Grüße, 世界", "Gr\x7f\x7fe, \x7f\x7f"},
		{"bad \xff\xfe utf8", "bad \x7f\x7f utf8"},
		{"\u202eevil", "\x7fevil"}, // bidi override is just a box
	}
	for _, c := range cases {
		if got := sanitize(c.in); got != c.want {
			t.Errorf("sanitize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := sanitize(strings.Repeat("x", 3*maxTextBytes)); len(got) != maxTextBytes {
		t.Errorf("long input kept %d bytes", len(got))
	}
}

func TestWrapText(t *testing.T) {
	cases := []struct {
		in          string
		cols, lines int
		want        []string
	}{
		{"Boot stopped: HyperBEAM exited with status 1.", 20, 4, []string{"Boot stopped:", "HyperBEAM exited", "with status 1."}},
		{"abcdefghij", 4, 5, []string{"abcd", "efgh", "ij"}},
		{"one two three four five six", 9, 2, []string{"one two", "three..."}},
		{"   ", 10, 3, nil},
		{"word", 0, 3, nil},
		{"a b", 2, 1, []string{"a"}}, // cols < 3: cut without an ellipsis
	}
	for _, c := range cases {
		got := wrapText(c.in, c.cols, c.lines)
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("wrapText(%q, %d, %d) = %q, want %q", c.in, c.cols, c.lines, got, c.want)
		}
	}
}

// Wrapping loses nothing when everything fits: the words come back in order.
func TestWrapKeepsWords(t *testing.T) {
	in := "Found the boot ESP on sdb1 (PARTUUID 1b2e...) and measured config.json into PCR 12"
	for cols := 12; cols < 90; cols++ {
		lines := wrapText(in, cols, 100)
		for _, l := range lines {
			if len(l) > cols {
				t.Fatalf("cols %d: line %q too long", cols, l)
			}
		}
		if got := strings.Join(lines, " "); got != strings.Join(strings.Fields(in), " ") {
			t.Fatalf("cols %d: words changed: %q", cols, got)
		}
	}
}

// FuzzStatusText: any status, on any of a few screens, renders without a
// panic, within the screen's margins, in at most the allowed lines.
func FuzzStatusText(f *testing.F) {
	for _, s := range []string{"", "Boot stopped: HyperBEAM exited with status 1.", "\x1b[2J\x00\xff", strings.Repeat("W", 500), "Grüße 世界 \u202e", strings.Repeat("a ", 3000)} {
		f.Add(s, s[:len(s)/2])
	}
	f.Fuzz(func(t *testing.T, status, word string) {
		for _, size := range []image.Point{{320, 240}, {640, 480}, {1024, 600}} {
			scene := Scene{Word: word, Status: status, Caption: status, Theme: ThemeStopped}
			l := Plan(scene, size.X, size.Y)
			if len(l.Status) > maxStatusLines || len(l.Caption) > maxCaptionLines {
				t.Fatalf("%d status lines, %d caption lines", len(l.Status), len(l.Caption))
			}
			cols := l.TextBounds.Dx() / textWidth(1, l.Scale)
			for i, line := range append(append([]string{}, l.Status...), l.Caption...) {
				if len(line) > cols {
					t.Fatalf("line %d has %d chars, %d fit", i, len(line), cols)
				}
				if !utf8.ValidString(line) {
					t.Fatalf("line %q is not plain ASCII", line)
				}
				for j := 0; j < len(line); j++ {
					if line[j] < ' ' || line[j] > boxGlyph {
						t.Fatalf("unsanitised byte %#x", line[j])
					}
				}
			}
			frame := image.NewRGBA(image.Rect(0, 0, size.X, size.Y))
			_ = Render(frame, scene)
			// Nothing but background in the margins: text stayed in bounds.
			bg := ThemeStopped.Background
			for y := 0; y < size.Y; y++ {
				for x := 0; x < size.X; x++ {
					if image.Pt(x, y).In(l.TextBounds) {
						continue
					}
					if frame.RGBAAt(x, y) != bg {
						t.Fatalf("pixel (%d,%d) in the margin was drawn", x, y)
					}
				}
			}
		}
	})
}
