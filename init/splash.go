package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"inert/display"
)

// runSplash is the `/init splash` entry point: PID 1 starts it as a child
// with a pipe on fd 3 carrying display.State JSON lines. Its exit code tells
// PID 1 whether to restart it (display.ExitFailed) or run headless
// (display.ExitNoFramebuffer, display.ExitUnsupportedScreen).
func runSplash() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	states := os.NewFile(3, "state")
	if states == nil {
		fmt.Fprintln(os.Stderr, "splash: fd 3 (state pipe) is not open")
		return display.ExitFailed
	}
	defer states.Close()
	err := display.RunSplash(ctx, states, display.SplashOptions{Log: os.Stderr})
	if err != nil {
		fmt.Fprintf(os.Stderr, "splash: %v\n", err)
	}
	return display.ExitCode(err)
}
