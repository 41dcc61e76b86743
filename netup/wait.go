package netup

import (
	"context"
	"fmt"
	"time"
)

// waitFor is the one way netup waits: for a named condition, woken by
// events, bounded by timeout (0 waits until ctx ends). cond reports whether
// the condition holds and returns a channel that is closed on the next
// change worth re-checking.
func waitFor(ctx context.Context, clk Clock, what string, timeout time.Duration, cond func() (bool, <-chan struct{})) error {
	var deadline <-chan time.Time
	if timeout > 0 {
		deadline = clk.After(timeout)
	}
	for {
		ok, changed := cond()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-deadline:
			return fmt.Errorf("%w: %s after %v", ErrTimeout, what, timeout)
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
	}
}

// sleep waits d on clk unless ctx ends first; it reports whether d passed.
func sleep(ctx context.Context, clk Clock, d time.Duration) bool {
	select {
	case <-clk.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}
