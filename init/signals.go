package main

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// catchSignals must run before anything else in PID 1. The Go runtime installs
// handlers whose default for SIGTERM, SIGHUP, SIGINT and friends is to exit,
// and PID 1 exiting is a kernel panic. Notify (not Ignore) is deliberate:
// ignored dispositions survive exec and would leak into the service, while
// caught ones reset to default in every child.
//
// SIGCHLD goes to the reaper; every other signal is drained and dropped.
// SIGURG is left alone: the Go runtime uses it for preemption.
func catchSignals() (sigchld <-chan os.Signal, dropped <-chan os.Signal) {
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	other := make(chan os.Signal, 16)
	signal.Notify(other, ignoredSignals...)
	return chld, other
}

var ignoredSignals = []os.Signal{
	unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGUSR1, unix.SIGUSR2,
	unix.SIGPIPE, unix.SIGALRM, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU, unix.SIGPWR,
	unix.SIGWINCH, unix.SIGVTALRM, unix.SIGPROF, unix.SIGXCPU, unix.SIGXFSZ, unix.SIGIO,
	unix.SIGSTKFLT,
}

// disableCtrlAltDel makes the kernel send SIGINT to PID 1 on Ctrl-Alt-Del
// instead of rebooting at once; PID 1 drops that SIGINT.
func disableCtrlAltDel() error {
	return unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF)
}
