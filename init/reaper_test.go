package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// These tests make the test process a child subreaper, so orphans are
// reparented to it exactly as they are to PID 1.
func TestMain(m *testing.M) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "PR_SET_CHILD_SUBREAPER:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func forkSh(script string, extra ...*os.File) func() (int, error) {
	return func() (int, error) {
		files := []uintptr{0, 1, 2}
		for _, f := range extra {
			files = append(files, f.Fd())
		}
		return syscall.ForkExec("/bin/sh", []string{"sh", "-c", script}, &syscall.ProcAttr{Files: files})
	}
}

// drive runs the reaper on SIGCHLD until done() or the deadline.
func drive(t *testing.T, r *reaper, what string, done func() bool) {
	t.Helper()
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	defer signal.Stop(chld)
	deadline := time.After(20 * time.Second)
	for {
		r.reapAll()
		if done() {
			return
		}
		select {
		case <-chld:
		case <-time.After(100 * time.Millisecond): // a SIGCHLD may predate Notify
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestReaperDeliversEachStatusToItsStarter(t *testing.T) {
	r := newReaper()
	const n = 50
	chans := make([]<-chan unix.WaitStatus, n)
	for i := 0; i < n; i++ {
		_, ch, err := r.start(forkSh(fmt.Sprintf("exit %d", i)))
		if err != nil {
			t.Fatal(err)
		}
		chans[i] = ch
	}
	got := make([]int, n)
	for i := range got {
		got[i] = -1
	}
	drive(t, r, "50 exits", func() bool { return r.pending() == 0 })
	for i, ch := range chans {
		select {
		case ws := <-ch:
			got[i] = ws.ExitStatus()
		default:
			t.Fatalf("child %d: no status delivered", i)
		}
		if got[i] != i {
			t.Errorf("child %d got exit status %d: a status was stolen or swapped", i, got[i])
		}
	}
}

func TestReaperReapsOrphans(t *testing.T) {
	r := newReaper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// The grandchild outlives its parent and is reparented to us; it waits
	// for its stdin to close so the test decides when it exits.
	gr, gw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	_, ch, err := r.start(forkSh(`sh -c 'read x <&4' 4<&4 & echo $! >&3; exit 0`, pw, gr))
	if err != nil {
		t.Fatal(err)
	}
	pw.Close()
	gr.Close()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	drive(t, r, "the parent", func() bool { return len(ch) == 1 })
	if ppid := parentOf(orphan); ppid != os.Getpid() {
		t.Fatalf("orphan %d has parent %d, want us (%d)", orphan, ppid, os.Getpid())
	}
	before := r.reapedCount()
	gw.Close()
	drive(t, r, "the orphan", func() bool { return !exists(orphan) })
	if r.reapedCount() != before+1 {
		t.Errorf("reaped %d, want %d", r.reapedCount(), before+1)
	}
}

func TestReaperThousandZombies(t *testing.T) {
	r := newReaper()
	const n = 1000
	pids := make([]int, n)
	chans := make([]<-chan unix.WaitStatus, n)
	for i := 0; i < n; i++ {
		pid, ch, err := r.start(func() (int, error) {
			return syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{})
		})
		if err != nil {
			t.Fatal(err)
		}
		pids[i], chans[i] = pid, ch
	}
	// Wait until every child is a zombie, so one reapAll has to drain all of
	// them at once (SIGCHLDs coalesce).
	deadline := time.Now().Add(60 * time.Second)
	for _, pid := range pids {
		for state(pid) != "Z" {
			if time.Now().After(deadline) {
				t.Fatalf("pid %d never became a zombie (state %q)", pid, state(pid))
			}
			time.Sleep(time.Millisecond)
		}
	}
	r.reapAll()
	for i, ch := range chans {
		if len(ch) != 1 {
			t.Fatalf("child %d (pid %d): no status after one reapAll", i, pids[i])
		}
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil); !errors.Is(err, unix.ECHILD) {
		t.Fatalf("a zombie is left: wait4 says %v", err)
	}
}

func state(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "gone"
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

func parentOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

func exists(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}
