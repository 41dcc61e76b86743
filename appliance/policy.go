package appliance

import (
	"errors"
	"fmt"
)

// Class says what kind of failure an error is; the policy maps it to an Action.
type Class string

const (
	// ClassSecurity: a check that protects the appliance failed or could not run.
	ClassSecurity Class = "security"
	// ClassEnvironment: the outside world is not as hoped (no ESP, no lease);
	// retried within bounds, then the contract's fallback applies.
	ClassEnvironment Class = "environment"
	// ClassInternal: a bug or a crash in inert itself.
	ClassInternal Class = "internal"
)

// Action is what PID 1 does at the end of a boot or a failure.
type Action string

const (
	ActionNone     Action = ""
	ActionHalt     Action = "halt" // park with the reason on the status line
	ActionDegrade  Action = "degrade"
	ActionReboot   Action = "reboot"
	ActionPowerOff Action = "poweroff"
)

// StepError is a classified failure of a step. Status is the one line a person
// reads on the screen and in the status file.
type StepError struct {
	Class  Class
	Status string
	Err    error
}

func (e *StepError) Error() string {
	if e.Err == nil {
		return e.Status
	}
	return fmt.Sprintf("%s: %v", e.Status, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// Security, Environment and Internal classify err with the status line a
// person should read.
func Security(status string, err error) error {
	return &StepError{Class: ClassSecurity, Status: status, Err: err}
}

func Environment(status string, err error) error {
	return &StepError{Class: ClassEnvironment, Status: status, Err: err}
}

func Internal(status string, err error) error {
	return &StepError{Class: ClassInternal, Status: status, Err: err}
}

// ClassOf returns the class of err; an unclassified error is internal, because
// a failure nobody anticipated is a bug, and bugs fail closed.
func ClassOf(err error) Class {
	var se *StepError
	if errors.As(err, &se) {
		return se.Class
	}
	return ClassInternal
}

// StatusOf returns the status line carried by err, or fallback.
func StatusOf(err error, fallback string) string {
	var se *StepError
	if errors.As(err, &se) && se.Status != "" {
		return se.Status
	}
	return fallback
}

// ActionFor is the failure policy: security and internal failures halt; an
// environment failure degrades (the step's fallback applies and the plan
// goes on).
func ActionFor(c Class) Action {
	switch c {
	case ClassEnvironment:
		return ActionDegrade
	default:
		return ActionHalt
	}
}
