package appliance

import (
	"context"
	"errors"
	"testing"
)

var errInjected = errors.New("injected fault")

// TestPlanPolicy injects one fault per case and checks both the sentinel and
// the action the policy picks.
func TestPlanPolicy(t *testing.T) {
	cases := []struct {
		name       string
		fault      error
		wantAction Action
		wantRan    []string // steps whose Run was called, in order
		wantFall   bool
	}{
		{"no fault", nil, ActionNone, []string{"a", "b", "c"}, false},
		{"security halts", Security("Boot stopped: two ESPs.", errInjected), ActionHalt, []string{"a", "b"}, false},
		{"internal halts", Internal("", errInjected), ActionHalt, []string{"a", "b"}, false},
		{"unclassified halts", errInjected, ActionHalt, []string{"a", "b"}, false},
		{"environment retries then degrades", Environment("no ESP", errInjected), ActionNone,
			[]string{"a", "b", "b", "b", "c"}, true},
		{"skip goes on", Skip("not here"), ActionNone, []string{"a", "b", "c"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ran []string
			var fellBack error
			step := func(name string, fault error) Step {
				return Step{Name: name, Retries: 2,
					Run: func(ctx context.Context) error {
						ran = append(ran, name)
						return fault
					},
					Fallback: func(err error) { fellBack = err },
				}
			}
			var events []Event
			out := Plan{step("a", nil), step("b", tc.fault), step("c", nil)}.Run(context.Background(),
				func(e Event) { events = append(events, e) })
			if out.Action != tc.wantAction {
				t.Fatalf("action %q, want %q", out.Action, tc.wantAction)
			}
			if tc.wantAction != ActionNone && !errors.Is(out.Err, errInjected) {
				t.Fatalf("outcome error %v does not wrap the injected fault", out.Err)
			}
			if len(ran) != len(tc.wantRan) {
				t.Fatalf("ran %v, want %v", ran, tc.wantRan)
			}
			for i := range ran {
				if ran[i] != tc.wantRan[i] {
					t.Fatalf("ran %v, want %v", ran, tc.wantRan)
				}
			}
			if tc.wantFall != (fellBack != nil) {
				t.Fatalf("fallback ran: %v, want %v", fellBack != nil, tc.wantFall)
			}
			if tc.wantFall && !errors.Is(fellBack, errInjected) {
				t.Fatalf("fallback got %v", fellBack)
			}
			last := events[len(events)-1]
			if tc.wantAction == ActionHalt && (last.Action != ActionHalt || last.State != StateFail || last.Status == "") {
				t.Fatalf("last event %+v is not a halting failure with a status", last)
			}
		})
	}
}

func TestStepTimeoutCancelsContext(t *testing.T) {
	out := Plan{{Name: "slow", Timeout: 1, Run: func(ctx context.Context) error {
		<-ctx.Done()
		return Internal("", ctx.Err())
	}}}.Run(context.Background(), func(Event) {})
	if !errors.Is(out.Err, context.DeadlineExceeded) || out.Action != ActionHalt {
		t.Fatalf("got %+v", out)
	}
}
