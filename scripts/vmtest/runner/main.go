// Command runner is the /init of the privileged test VM (scripts/vmtest). It
// mounts what inert's PID 1 mounts (proc, sys, dev, devpts, tmp, run,
// securityfs, configfs), loads the modules the host packed, runs each test
// binary of the plan with -test.v as root, streams every output line to the
// org.inert.events port, ends with a "PASS n / FAIL m" summary and powers off.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"inert/scripts/guest"
	"inert/scripts/vmtest"
)

// extraMounts follow the basic ones; configfs is a module on Debian, so it
// is mounted after the modules are loaded.
var extraMounts = []guest.Mount{
	{Source: "securityfs", Target: "/sys/kernel/security", FSType: "securityfs", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, Optional: true},
	{Source: "configfs", Target: "/sys/kernel/config", FSType: "configfs", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, Optional: true},
}

// reporter writes Messages to the port, one line each, from any goroutine.
type reporter struct {
	mu sync.Mutex
	w  io.Writer
}

func (r *reporter) send(m vmtest.Message) {
	line, _ := json.Marshal(m)
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _ = r.w.Write(append(line, '\n'))
}

func main() {
	rep := &reporter{w: os.Stderr}
	setupErr := setup()
	port, err := guest.OpenPort("org.inert.events", 30*time.Second)
	if err == nil {
		rep.w = port
	}
	if err := errors.Join(setupErr, err); err != nil {
		rep.send(vmtest.Message{Kind: vmtest.KindError, Line: err.Error()})
	}
	pass, fail := 0, 0
	plan, err := readPlan()
	if err != nil {
		rep.send(vmtest.Message{Kind: vmtest.KindError, Line: err.Error()})
		fail++
	}
	for _, t := range plan.Tests {
		if runTest(rep, t, plan.Timeout) == 0 {
			pass++
		} else {
			fail++
		}
	}
	rep.send(vmtest.Message{Kind: vmtest.KindSummary, Pass: pass, Fail: fail, Line: fmt.Sprintf("PASS %d / FAIL %d", pass, fail)})
	if port != nil {
		_ = port.Sync()
		_ = port.Close()
	}
	_ = guest.PowerOff()
}

func setup() error {
	if err := guest.MountAll(guest.BasicMounts); err != nil {
		return err
	}
	modErr := guest.LoadModules()
	return errors.Join(modErr, guest.MountAll(extraMounts))
}

func readPlan() (vmtest.Plan, error) {
	var p vmtest.Plan
	b, err := os.ReadFile("/" + vmtest.PlanPath)
	if err != nil {
		return p, fmt.Errorf("plan: %w", err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("plan: %w", err)
	}
	return p, nil
}

// runTest runs one binary and returns its exit code (-1 if it did not run).
func runTest(rep *reporter, t vmtest.PlanTest, timeout string) int {
	rep.send(vmtest.Message{Kind: vmtest.KindStart, Binary: t.Name})
	args := []string{"-test.v"}
	if timeout != "" {
		args = append(args, "-test.timeout="+timeout)
	}
	args = append(args, t.Args...)
	cmd := exec.Command(t.Path, args...)
	cmd.Dir = t.Dir
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/tmp", "TMPDIR=/tmp", "INERT_VMTEST=1"}
	if fi, err := os.Stat("/" + vmtest.SharePath); err == nil && fi.IsDir() {
		cmd.Env = append(cmd.Env, "INERT_VMTEST_SHARE=/"+vmtest.SharePath)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		rep.send(vmtest.Message{Kind: vmtest.KindExit, Binary: t.Name, Code: -1, Line: err.Error()})
		return -1
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		rep.send(vmtest.Message{Kind: vmtest.KindExit, Binary: t.Name, Code: -1, Line: err.Error()})
		return -1
	}
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rep.send(vmtest.Message{Kind: vmtest.KindOutput, Binary: t.Name, Line: strings.TrimRight(sc.Text(), "\r")})
	}
	pr.Close()
	code := 0
	if err := cmd.Wait(); err != nil {
		code = -1
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		}
	}
	rep.send(vmtest.Message{Kind: vmtest.KindExit, Binary: t.Name, Code: code})
	return code
}
