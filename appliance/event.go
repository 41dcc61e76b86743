package appliance

import (
	"encoding/json"
	"strings"
	"time"
)

// State is where a step is in its life.
type State string

const (
	StateStart State = "start"
	StateOK    State = "ok"
	StateSkip  State = "skip"
	StateFail  State = "fail"
	// StateInfo is a progress or status line inside a running step, or from
	// PID 1 itself.
	StateInfo State = "info"
)

// Event is one JSON line from the worker to PID 1, and from PID 1 to the
// status file, /dev/kmsg, the splash and the org.inert.events port. It never
// carries a secret: messages are built from validated, non-secret values only.
type Event struct {
	Time     time.Time `json:"time"`
	Step     string    `json:"step"`
	Index    int       `json:"index"`
	State    State     `json:"state"`
	Message  string    `json:"message,omitempty"`
	Class    Class     `json:"class,omitempty"`
	Duration Millis    `json:"duration_ms,omitempty"`
	// Timeout is set on start events: PID 1 kills a worker that is still in
	// this step after it (plus a grace period), and halts.
	Timeout Millis `json:"timeout_ms,omitempty"`
	// Status, when set, replaces the one-line human status.
	Status string `json:"status,omitempty"`
	// Word, when set, is the splash's state word (BOOTING, WIFI, ...).
	Word string `json:"word,omitempty"`
	// Mode is set once by the worker when it knows the boot mode, so PID 1
	// can mirror human lines to the console in debug mode.
	Mode string `json:"mode,omitempty"`
	// Action is set on a terminal event: what PID 1 will do.
	Action Action `json:"action,omitempty"`
	// Service is set once, when the plan has succeeded: what PID 1 must start.
	Service *LaunchSpec `json:"service,omitempty"`
	// Data carries step-specific, non-secret facts (e.g. the boot-to-exec
	// timing, the detach result) for tests and evidence.
	Data map[string]string `json:"data,omitempty"`
}

// LaunchSpec is the service as PID 1 starts it: everything resolved.
type LaunchSpec struct {
	Name  string   `json:"name"`
	Argv  []string `json:"argv"`
	Env   []string `json:"env"`
	Dir   string   `json:"dir"`
	Stdio string   `json:"stdio"`
	// ExitStatus is the status line format (one %d) when the service exits.
	ExitStatus string `json:"exit_status"`
	OnExit     string `json:"on_exit"`
}

// Millis is a duration that encodes as whole milliseconds.
type Millis time.Duration

func (m Millis) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(m).Milliseconds())
}

func (m *Millis) UnmarshalJSON(b []byte) error {
	var ms int64
	if err := json.Unmarshal(b, &ms); err != nil {
		return err
	}
	*m = Millis(time.Duration(ms) * time.Millisecond)
	return nil
}

// OneLine makes s safe for a one-line status: control characters (a
// newline would forge another record in kmsg or the status file) become
// spaces.
func OneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
