package boot

import (
	"context"
	"fmt"
	"time"
)

// pollInterval is how often a condition without an event is re-checked.
const pollInterval = 25 * time.Millisecond

// pollUntil is a named, bounded wait for a condition that has no event to
// wait on (a busy mount going idle, a sysfs entry vanishing). It checks cond
// at once and then every pollInterval until it holds, cond fails, timeout
// passes (an error wrapping ErrWaitTimeout naming what was awaited) or ctx
// ends.
func pollUntil(ctx context.Context, name string, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", name, err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", name, ctx.Err())
		case <-deadline.C:
			// One last look: the condition may have come true just now.
			if ok, err := cond(); err == nil && ok {
				return nil
			}
			return fmt.Errorf("%w %s for %s", ErrWaitTimeout, timeout, name)
		case <-tick.C:
		}
	}
}
