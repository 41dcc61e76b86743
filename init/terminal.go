package main

import (
	"time"

	"golang.org/x/sys/unix"

	"inert/appliance"
)

const (
	termGrace = 5 * time.Second
	syncBound = 10 * time.Second
)

// halt parks the appliance: the reason stays on the status line and the
// splash, PID 1 keeps reaping, nothing reboots. detail goes to kmsg only.
func (p *pid1) halt(status, detail string) {
	if p.halted {
		return
	}
	p.halted = true
	p.disarmDeadline()
	if status == "" {
		status = p.status
	}
	p.theme = "stopped"
	p.emit(appliance.Event{Step: "pid1", State: appliance.StateInfo, Action: appliance.ActionHalt,
		Status: status, Message: detail})
	p.setStatus(p.m.Word("stopped"), status)
}

// terminal carries out reboot or power-off: TERM to every process, a grace
// period, KILL, unmount in reverse order, a bounded sync, then reboot(2).
func (p *pid1) terminal(action appliance.Action, status string) {
	p.theme = "stopped"
	p.emit(appliance.Event{Step: "pid1", State: appliance.StateInfo, Action: action, Status: status})
	p.setStatus(p.m.Word("stopped"), status)
	// kill(-1) reaches every process but PID 1, orphans included.
	_ = unix.Kill(-1, unix.SIGTERM)
	p.awaitNoChildren(termGrace)
	_ = unix.Kill(-1, unix.SIGKILL)
	p.awaitNoChildren(termGrace)
	unmountAll()
	done := make(chan struct{})
	go func() { unix.Sync(); close(done) }()
	select {
	case <-done:
	case <-time.After(syncBound):
		p.log("sync did not finish within %s", syncBound)
	}
	cmd := unix.LINUX_REBOOT_CMD_RESTART
	if action == appliance.ActionPowerOff {
		cmd = unix.LINUX_REBOOT_CMD_POWER_OFF
	}
	err := unix.Reboot(cmd)
	// Only reached if reboot(2) failed: park rather than exit.
	p.halted = false
	p.halt(status, "reboot(2) failed: "+errString(err))
}

// awaitNoChildren reaps on every SIGCHLD until no child is left or the
// bound passes.
func (p *pid1) awaitNoChildren(bound time.Duration) {
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	for !p.reaper.reapAll() {
		select {
		case <-p.sigchld:
		case <-deadline.C:
			return
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
