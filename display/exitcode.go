package display

import (
	"context"
	"errors"
)

// Exit codes of the splash process, so PID 1 can tell "no screen, run
// headless" (do not restart) from a crash (restart, within its budget).
const (
	ExitOK                = 0 // states ended or asked to stop
	ExitFailed            = 1 // anything else: worth a restart
	ExitNoFramebuffer     = 3 // no fb0 in time: headless
	ExitUnsupportedScreen = 4 // fb0 in a format or geometry we refuse: headless
)

// ExitCode maps RunSplash's result onto the exit codes above.
func ExitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return ExitOK
	case errors.Is(err, ErrNoFramebuffer):
		return ExitNoFramebuffer
	case errors.Is(err, ErrUnsupportedFormat), errors.Is(err, ErrBadGeometry):
		return ExitUnsupportedScreen
	default:
		return ExitFailed
	}
}
