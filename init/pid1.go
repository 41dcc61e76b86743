package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"inert/appliance"
)

const (
	// workerGrace is added to a step's own timeout before PID 1 gives up on
	// the worker: the worker enforces the timeout itself; this is the backstop
	// for a worker stuck in the kernel.
	workerGrace = 15 * time.Second
	// splashRestarts bounds how often a crashing splash is restarted.
	splashRestarts = 3
	maxEventLine   = 64 << 10
	// kmsgLevel is KERN_DEBUG: the lines stay in the kernel log but never
	// reach a console on their own (debug mode prints them once, through
	// the serial mirror, instead of twice).
	kmsgLevel = "<7>"
)

// pid1 is the state of the init process. Only the main loop touches it.
type pid1 struct {
	m       *appliance.Manifest
	reaper  *reaper
	sigchld <-chan os.Signal
	start   time.Time
	// startUptime is the kernel's clock when PID 1 began.
	startUptime time.Duration

	status, word, theme string
	currentStep         string
	mirror              bool
	halted              bool
	serviceRunning      bool

	kmsg, console *sink
	port          *sink
	portChecked   time.Time
	eventsLog     *os.File
	splash        *splashProc
	splashStarts  int

	workerPid   int
	workerExit  <-chan unix.WaitStatus
	workerDone  bool
	handedOver  bool
	deadline    *time.Timer
	serviceExit <-chan unix.WaitStatus
	spec        *appliance.LaunchSpec
}

// runPID1 never returns: PID 1 returning is a kernel panic.
func runPID1() {
	sigchld, dropped := catchSignals()
	unix.Umask(0o077)
	p := &pid1{reaper: newReaper(), sigchld: sigchld, start: time.Now(), startUptime: bootTime(), theme: "calm"}
	earlyErr := mountEarly()
	p.openKmsg()
	if err := disableCtrlAltDel(); err != nil {
		p.log("could not disable Ctrl-Alt-Del: %v", err)
	}
	p.m = loadManifest()
	if err := os.MkdirAll(p.m.RunDir, 0o755); err == nil {
		_ = os.Chmod(p.m.RunDir, 0o755)
	}
	if f, err := os.OpenFile(filepath.Join(p.m.RunDir, "events.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
		p.eventsLog = f
	}
	p.setStatus(p.m.Word("booting"), "Booting.")
	p.startSplash()

	events := make(chan appliance.Event, 64)
	switch {
	case earlyErr != nil:
		p.halt("Boot stopped: the early mounts failed.", earlyErr.Error())
	case p.m.Name == "":
		p.halt("Boot stopped: the appliance manifest is missing or invalid.", "")
	default:
		if err := p.startWorker(events); err != nil {
			p.halt("Boot stopped: internal error in worker.", err.Error())
		}
	}

	for {
		select {
		case <-sigchld:
			p.reaper.reapAll()
		case s := <-dropped:
			p.log("ignored signal %v", s)
		case ev := <-events:
			p.onWorkerEvent(ev)
		case ws := <-p.workerExit:
			p.onWorkerExit(ws)
		case ws := <-p.serviceExit:
			p.onServiceExit(ws)
		case ws := <-p.splashExit():
			p.onSplashExit(ws)
		case <-p.deadlineC():
			p.onDeadline()
		}
	}
}

func loadManifest() *appliance.Manifest {
	b, err := os.ReadFile(appliance.ManifestPath)
	if err == nil {
		if m, err := appliance.ParseManifest(b); err == nil {
			return m
		}
	}
	// A broken image still needs somewhere to say so.
	return &appliance.Manifest{RunDir: "/run/inert", Status: appliance.StatusWords{}}
}

func (p *pid1) openKmsg() {
	f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err != nil {
		return
	}
	// A Go crash in PID 1 must be readable after the fact, not lost on a
	// console nobody watches.
	_ = debug.SetCrashOutput(f, debug.CrashOptions{})
	p.kmsg = newSink("kmsg", func(line []byte) { _, _ = f.Write(line) })
}

// log writes a PID 1 line to kmsg (and the console in debug mode).
func (p *pid1) log(format string, a ...any) {
	line := appliance.OneLine(fmt.Sprintf("inert: "+format, a...))
	if p.kmsg != nil {
		p.kmsg.send([]byte(kmsgLevel + line + "\n"))
	}
	if p.mirror && p.console != nil {
		p.console.send([]byte(line + "\n"))
	}
}

// emit sends one event to every sink: events log, port, kmsg, console.
func (p *pid1) emit(ev appliance.Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	line := mustJSON(ev)
	// Open the port first: a late port replays the log, which must not yet
	// hold this line.
	port := p.eventsPort()
	if p.eventsLog != nil {
		_, _ = p.eventsLog.Write(line)
	}
	if port != nil {
		port.send(line)
	}
	human := humanLine(ev)
	if p.kmsg != nil {
		p.kmsg.send([]byte(kmsgLevel + human + "\n"))
	}
	if p.mirror && p.console != nil {
		p.console.send([]byte(human + "\n"))
	}
}

// eventsPort opens org.inert.events once virtio_console is loaded; until
// then it looks again at most every 200 ms.
func (p *pid1) eventsPort() *sink {
	if p.port != nil || time.Since(p.portChecked) < 200*time.Millisecond {
		return p.port
	}
	p.portChecked = time.Now()
	path := eventsPortPath()
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil
	}
	p.port = newSink("port", func(line []byte) { _, _ = f.Write(line) })
	// The port appeared late: replay what it missed from the events log.
	if b, err := os.ReadFile(filepath.Join(p.m.RunDir, "events.jsonl")); err == nil {
		for _, l := range strings.SplitAfter(string(b), "\n") {
			if l != "" {
				p.port.send([]byte(l))
			}
		}
	}
	return p.port
}

// setStatus writes the one-line status file and tells the splash.
func (p *pid1) setStatus(word, status string) {
	if word != "" {
		p.word = word
	}
	if status != "" {
		p.status = appliance.OneLine(status)
		tmp := filepath.Join(p.m.RunDir, ".status.tmp")
		if err := os.WriteFile(tmp, []byte(p.status+"\n"), 0o644); err == nil {
			_ = os.Chmod(tmp, 0o644)
			_ = os.Rename(tmp, filepath.Join(p.m.RunDir, "status"))
		}
	}
	p.sendSplash()
}

func (p *pid1) startWorker(events chan<- appliance.Event) error {
	evR, evW, err := os.Pipe()
	if err != nil {
		return err
	}
	logR, logW, err := os.Pipe()
	if err != nil {
		return err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	self, err := os.Executable()
	if err != nil {
		self = "/init"
	}
	pid, exit, err := p.reaper.start(func() (int, error) {
		return syscall.ForkExec(self, []string{"inert-worker", "worker"}, &syscall.ProcAttr{
			Dir:   "/",
			Env:   []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
			Files: []uintptr{devnull.Fd(), logW.Fd(), logW.Fd(), evW.Fd()},
			Sys:   &syscall.SysProcAttr{Setsid: true},
		})
	})
	evW.Close()
	logW.Close()
	if err != nil {
		evR.Close()
		logR.Close()
		return err
	}
	p.workerPid, p.workerExit = pid, exit
	go readEvents(evR, events)
	go p.forwardLog(logR, "inert-worker")
	return nil
}

// readEvents decodes the worker's JSON lines. A line that does not decode is
// itself reported, never trusted.
func readEvents(r *os.File, out chan<- appliance.Event) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxEventLine)
	for sc.Scan() {
		var ev appliance.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			out <- appliance.Event{Step: "pid1", State: appliance.StateInfo, Message: "undecodable event from the worker"}
			continue
		}
		out <- ev
	}
}

// forwardLog copies a child's stderr (a Go panic lands there) to kmsg.
func (p *pid1) forwardLog(r *os.File, tag string) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxEventLine)
	for sc.Scan() {
		line := appliance.OneLine(tag + ": " + sc.Text())
		if p.kmsg != nil {
			p.kmsg.send([]byte("<3>" + line + "\n"))
		}
	}
}

func (p *pid1) onWorkerEvent(ev appliance.Event) {
	if ev.Mode != "" {
		p.setMode(ev.Mode)
	}
	switch ev.State {
	case appliance.StateStart:
		p.currentStep = ev.Step
		p.armDeadline(time.Duration(ev.Timeout))
	case appliance.StateOK, appliance.StateSkip, appliance.StateFail:
		p.disarmDeadline()
	}
	p.emit(ev)
	if p.halted {
		return
	}
	if ev.Status != "" || ev.Word != "" {
		word := ev.Word
		if p.handedOver {
			// Once the service runs, the splash word is the service's
			// (STARTING, READY); the worker only updates the line.
			word = ""
		}
		p.setStatus(word, ev.Status)
	}
	switch {
	case ev.Action == appliance.ActionHalt:
		p.halt(ev.Status, "")
	case ev.Action == appliance.ActionReboot || ev.Action == appliance.ActionPowerOff:
		p.terminal(ev.Action, ev.Status)
	case ev.Service != nil && !p.handedOver:
		p.handedOver = true
		p.disarmDeadline()
		p.startService(*ev.Service)
	}
}

func (p *pid1) setMode(mode string) {
	if mode != "debug" || p.mirror {
		return
	}
	f, err := os.OpenFile("/dev/console", os.O_WRONLY|syscall.O_NOCTTY, 0)
	if err != nil {
		return
	}
	p.mirror = true
	p.console = newSink("console", func(line []byte) { _, _ = f.Write(line) })
}

func (p *pid1) onWorkerExit(ws unix.WaitStatus) {
	p.workerDone = true
	p.workerExit = nil
	p.disarmDeadline()
	if p.handedOver || p.halted {
		if ws.ExitStatus() != 0 || ws.Signaled() {
			p.log("worker exited after the hand-over: %s", describeWait(ws))
		}
		return
	}
	step := p.currentStep
	if step == "" {
		step = "worker"
	}
	p.halt(fmt.Sprintf("Boot stopped: internal error in %s.", step), "worker "+describeWait(ws))
}

func (p *pid1) onDeadline() {
	p.deadline = nil
	if p.workerDone || p.handedOver {
		return
	}
	_ = unix.Kill(p.workerPid, unix.SIGKILL)
	p.halt(fmt.Sprintf("Boot stopped: internal error in %s.", p.currentStep), "the step did not finish in time")
}

func (p *pid1) armDeadline(timeout time.Duration) {
	p.disarmDeadline()
	if timeout <= 0 {
		return
	}
	p.deadline = time.NewTimer(timeout + workerGrace)
}

func (p *pid1) disarmDeadline() {
	if p.deadline != nil {
		p.deadline.Stop()
		p.deadline = nil
	}
}

func (p *pid1) deadlineC() <-chan time.Time {
	if p.deadline == nil {
		return nil
	}
	return p.deadline.C
}

func (p *pid1) startService(spec appliance.LaunchSpec) {
	p.spec = &spec
	stdio := os.DevNull
	if spec.Stdio == "console" {
		stdio = "/dev/console"
	}
	in, err := os.Open(os.DevNull)
	if err != nil {
		p.halt("Boot stopped: internal error in service.", err.Error())
		return
	}
	defer in.Close()
	out, err := os.OpenFile(stdio, os.O_WRONLY|syscall.O_NOCTTY, 0)
	if err != nil {
		p.halt("Boot stopped: internal error in service.", err.Error())
		return
	}
	defer out.Close()
	// Kernel timestamps (CLOCK_BOOTTIME, what dmesg shows): PID 1 starts
	// right after the kernel's "Run /init".
	p.emit(appliance.Event{Step: "service", State: appliance.StateStart,
		Message: "exec " + spec.Argv[0],
		Data: map[string]string{
			"since_pid1_ms":        fmt.Sprint(time.Since(p.start).Milliseconds()),
			"pid1_start_uptime_ms": fmt.Sprint(p.startUptime.Milliseconds()),
			"exec_uptime_ms":       fmt.Sprint(bootTime().Milliseconds()),
		}})
	_, exit, err := p.reaper.start(func() (int, error) {
		return syscall.ForkExec(spec.Argv[0], spec.Argv, &syscall.ProcAttr{
			Dir:   spec.Dir,
			Env:   spec.Env,
			Files: []uintptr{in.Fd(), out.Fd(), out.Fd()},
			// A new session has no controlling terminal: nothing the
			// service does can read a console.
			Sys: &syscall.SysProcAttr{Setsid: true},
		})
	})
	if err != nil {
		p.setStatus(p.m.Word("stopped"), fmt.Sprintf("Boot stopped: %s could not be started.", spec.Name))
		p.theme = "stopped"
		p.halt("", err.Error())
		return
	}
	p.serviceRunning = true
	p.serviceExit = exit
	p.setStatus(p.m.Word("starting"), fmt.Sprintf("Starting %s.", spec.Name))
}

func (p *pid1) onServiceExit(ws unix.WaitStatus) {
	p.serviceExit = nil
	p.serviceRunning = false
	code := ws.ExitStatus()
	if ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	status := fmt.Sprintf(p.spec.ExitStatus, code)
	p.emit(appliance.Event{Step: "service", State: appliance.StateFail, Status: status,
		Message: describeWait(ws), Data: map[string]string{"exit_status": fmt.Sprint(code)}})
	switch p.spec.OnExit {
	case "reboot":
		p.terminal(appliance.ActionReboot, status)
	case "poweroff":
		p.terminal(appliance.ActionPowerOff, status)
	default:
		p.halt(status, "")
	}
}

// bootTime is the kernel's CLOCK_BOOTTIME: the clock of dmesg timestamps.
func bootTime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

func describeWait(ws unix.WaitStatus) string {
	switch {
	case ws.Signaled():
		return fmt.Sprintf("killed by signal %v", ws.Signal())
	case ws.Exited():
		return fmt.Sprintf("exited with status %d", ws.ExitStatus())
	default:
		return fmt.Sprintf("wait status %#x", uint32(ws))
	}
}
