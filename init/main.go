// Command init is inert's PID 1 and its multi-call helpers.
//
// As PID 1 it does only what only PID 1 can: signals, reaping, starting and
// watching its children (the worker that runs the boot plan, the splash, and
// the one service), and the terminal action (halt, reboot, power off).
// Everything that parses outside input or talks to devices runs in the
// worker or the splash, so a crash there is reported, never a kernel panic.
//
// The role is chosen by the process id first and argv second: as PID 1 the
// arguments are ignored, because the kernel passes unknown command-line
// words to init and those must never select a role.
package main

import (
	"fmt"
	"os"
)

func main() {
	if os.Getpid() == 1 {
		runPID1() // never returns
	}
	role := ""
	if len(os.Args) > 1 {
		role = os.Args[1]
	}
	switch role {
	case "worker":
		os.Exit(runWorker())
	case "splash":
		os.Exit(runSplash())
	case "zone":
		os.Exit(runZone(os.Args[2:]))
	default:
		fmt.Fprintln(os.Stderr, "inert init: run by the kernel as PID 1; roles: worker, splash, zone open")
		os.Exit(2)
	}
}
