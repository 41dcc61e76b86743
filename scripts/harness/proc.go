package harness

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// process is a child we started and must stop: it is waited for exactly once
// in the background, so Stop can bound its wait and nothing is left a zombie.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // exit status, valid after done is closed
}

// startProcess starts cmd so that it dies with us (Pdeathsig) and is reaped
// by a goroutine.
func startProcess(cmd *exec.Cmd) (*process, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *process) Pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has been reaped.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig, waits up to grace, then SIGKILLs by pid and waits for the
// reaper. It returns the exit status.
func (p *process) stop(sig os.Signal, grace time.Duration) error {
	if !p.exited() && sig != nil {
		_ = p.cmd.Process.Signal(sig)
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(grace):
	}
	_ = syscall.Kill(p.Pid(), syscall.SIGKILL)
	<-p.done
	return p.err
}

// alive reports whether pid still names a live, unreaped process.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
