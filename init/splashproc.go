package main

import (
	"os"

	"inert/appliance"
	"inert/display"
	"syscall"

	"golang.org/x/sys/unix"
)

// splashProc is the running splash child and the pipe PID 1 feeds it.
type splashProc struct {
	pid   int
	exit  <-chan unix.WaitStatus
	state *sink
}

// splashState is one line to the splash: what to show. The splash runs the
// health probe itself, so a hung service never blocks PID 1.
type splashState struct {
	Word       string `json:"word"`
	Status     string `json:"status"`
	RunDir     string `json:"run_dir"`
	HealthPort int    `json:"health_port"`
	HealthPath string `json:"health_path"`
	Theme      string `json:"theme"`
	ReadyWord  string `json:"ready_word"`
	// Probe tells the splash the service is running, so probing makes sense.
	Probe bool `json:"probe"`
}

func (p *pid1) startSplash() {
	if p.splashStarts >= 1+splashRestarts {
		p.log("splash crashed too often; the screen stays as it is")
		return
	}
	p.splashStarts++
	r, w, err := os.Pipe()
	if err != nil {
		return
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		r.Close()
		w.Close()
		return
	}
	defer devnull.Close()
	logR, logW, err := os.Pipe()
	if err != nil {
		r.Close()
		w.Close()
		return
	}
	self, err := os.Executable()
	if err != nil {
		self = "/init"
	}
	pid, exit, err := p.reaper.start(func() (int, error) {
		return syscall.ForkExec(self, []string{"inert-splash", "splash"}, &syscall.ProcAttr{
			Dir:   "/",
			Env:   []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
			Files: []uintptr{devnull.Fd(), logW.Fd(), logW.Fd(), r.Fd()},
			Sys:   &syscall.SysProcAttr{Setsid: true},
		})
	})
	r.Close()
	logW.Close()
	if err != nil {
		w.Close()
		logR.Close()
		p.log("splash did not start: %v", err)
		return
	}
	go p.forwardLog(logR, "inert-splash")
	p.splash = &splashProc{pid: pid, exit: exit,
		state: newSink("splash", func(line []byte) { _, _ = w.Write(line) })}
	p.sendSplash()
}

func (p *pid1) sendSplash() {
	if p.splash == nil || p.m == nil {
		return
	}
	p.splash.state.send(mustJSON(splashState{
		Word: p.word, Status: p.status, RunDir: p.m.RunDir,
		HealthPort: p.m.Service.Health.Port, HealthPath: p.m.Service.Health.Path,
		Theme: p.theme, ReadyWord: p.m.Word("ready"), Probe: p.serviceRunning,
	}))
}

func (p *pid1) splashExit() <-chan unix.WaitStatus {
	if p.splash == nil {
		return nil
	}
	return p.splash.exit
}

func (p *pid1) onSplashExit(ws unix.WaitStatus) {
	p.splash = nil
	if ws.Exited() {
		switch ws.ExitStatus() {
		case display.ExitOK:
			return
		case display.ExitNoFramebuffer, display.ExitUnsupportedScreen:
			p.emit(appliance.Event{Step: "splash", State: appliance.StateInfo,
				Message: "no usable framebuffer; running headless"})
			if !p.halted && !p.serviceRunning {
				p.setStatus("", "No screen found; running headless.")
			}
			return
		}
	}
	p.log("splash %s; restarting", describeWait(ws))
	p.startSplash()
}
