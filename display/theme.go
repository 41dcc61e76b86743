package display

import "image/color"

// Theme is the splash's palette. Codes are always black on white paper,
// whatever the theme, because that is what phone cameras read best.
type Theme struct {
	Name       string
	Background color.RGBA
	Text       color.RGBA // status and caption lines
	Word       color.RGBA // the big state word
	Paper      color.RGBA // QR card and quiet zone
	Ink        color.RGBA // QR modules
}

var (
	// ThemeCalm is for booting and running: dark slate, soft text.
	ThemeCalm = Theme{
		Name:       "calm",
		Background: color.RGBA{0x12, 0x22, 0x33, 0xff},
		Text:       color.RGBA{0xdc, 0xe4, 0xec, 0xff},
		Word:       color.RGBA{0x8c, 0xd8, 0xbe, 0xff},
		Paper:      color.RGBA{0xff, 0xff, 0xff, 0xff},
		Ink:        color.RGBA{0x00, 0x00, 0x00, 0xff},
	}
	// ThemeStopped is for a stopped boot: the whole screen signal red.
	ThemeStopped = Theme{
		Name:       "stopped",
		Background: color.RGBA{0xc0, 0x00, 0x00, 0xff},
		Text:       color.RGBA{0xff, 0xff, 0xff, 0xff},
		Word:       color.RGBA{0xff, 0xff, 0xff, 0xff},
		Paper:      color.RGBA{0xff, 0xff, 0xff, 0xff},
		Ink:        color.RGBA{0x00, 0x00, 0x00, 0xff},
	}
)

// ThemeByName maps the state's theme field; anything unknown is calm.
func ThemeByName(name string) Theme {
	if name == ThemeStopped.Name {
		return ThemeStopped
	}
	return ThemeCalm
}
