package appliance

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Step is one named stage of the boot plan.
type Step struct {
	Name string
	// Timeout bounds the step; the worker cancels its context at the
	// timeout and PID 1 kills the worker shortly after, as a backstop.
	Timeout time.Duration
	// Retries is how often an environment failure is retried before the
	// fallback applies.
	Retries int
	// Run does the step and returns nil, a Skip, or a classified error.
	Run func(ctx context.Context) error
	// Fallback, if set, runs after an environment failure has exhausted its
	// retries; it applies the contract's fallback and the plan goes on.
	Fallback func(err error)
}

// Plan is the boot, as one ordered list.
type Plan []Step

// ErrSkipped marks a step that had nothing to do in this boot.
var ErrSkipped = errors.New("skipped")

// Skip returns the error a step returns when it does not apply.
func Skip(reason string) error { return fmt.Errorf("%w: %s", ErrSkipped, reason) }

// Outcome is how a plan ended.
type Outcome struct {
	Action Action
	Step   string
	Status string
	Err    error
}

// Run executes the steps in order, emitting start and end events, and
// applies the failure policy. It stops at the first failure whose action is
// not Degrade.
func (pl Plan) Run(ctx context.Context, emit func(Event)) Outcome {
	for i, s := range pl {
		idx := i + 1
		emit(Event{Step: s.Name, Index: idx, State: StateStart, Timeout: Millis(s.Timeout)})
		began := time.Now()
		err := s.runWithRetries(ctx, idx, emit)
		d := Millis(time.Since(began))
		switch {
		case err == nil:
			emit(Event{Step: s.Name, Index: idx, State: StateOK, Duration: d})
		case errors.Is(err, ErrSkipped):
			emit(Event{Step: s.Name, Index: idx, State: StateSkip, Duration: d, Message: err.Error()})
		default:
			class := ClassOf(err)
			action := ActionFor(class)
			status := StatusOf(err, fmt.Sprintf("Boot stopped: internal error in %s.", s.Name))
			ev := Event{Step: s.Name, Index: idx, State: StateFail, Duration: d, Class: class,
				Message: err.Error(), Status: status}
			if action == ActionDegrade {
				emit(ev)
				if s.Fallback != nil {
					s.Fallback(err)
				}
				continue
			}
			ev.Action = action
			emit(ev)
			return Outcome{Action: action, Step: s.Name, Status: status, Err: err}
		}
	}
	return Outcome{}
}

func (s Step) runWithRetries(ctx context.Context, idx int, emit func(Event)) error {
	var err error
	for attempt := 0; attempt <= s.Retries; attempt++ {
		if attempt > 0 {
			emit(Event{Step: s.Name, Index: idx, State: StateInfo,
				Message: fmt.Sprintf("retry %d of %d after: %v", attempt, s.Retries, err)})
		}
		err = s.runOnce(ctx)
		if err == nil || errors.Is(err, ErrSkipped) || ClassOf(err) != ClassEnvironment {
			return err
		}
	}
	return err
}

func (s Step) runOnce(ctx context.Context) error {
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	return s.Run(ctx)
}
