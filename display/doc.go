// Package display owns the screen: the Linux framebuffer and its pixel formats,
// the bitmap font, the QR code and the splash renderer. The screen is output
// only; nothing here reads a VT, a keyboard or any other local input.
package display
