package main

import (
	"errors"
	"sync"

	"golang.org/x/sys/unix"
)

// reaper owns wait4(-1). Nothing else in PID 1 may call wait: os/exec's Wait
// would race with it and one of them would lose a status. Children are started
// through reaper.start, which registers the pid while holding the lock, so a
// child that exits at once is still matched to whoever started it.
type reaper struct {
	mu      sync.Mutex
	waiting map[int]chan unix.WaitStatus
	// reaped counts statuses collected, orphans included (for tests and logs).
	reaped int
}

func newReaper() *reaper {
	return &reaper{waiting: make(map[int]chan unix.WaitStatus)}
}

// start runs fork (which must create exactly one child and return its pid)
// with the registry locked, and returns a channel that receives the child's
// exit status once.
func (r *reaper) start(fork func() (int, error)) (int, <-chan unix.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := fork()
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan unix.WaitStatus, 1)
	r.waiting[pid] = ch
	return pid, ch, nil
}

// reapAll collects every exited child without blocking. It is called on each
// SIGCHLD; signals coalesce, so one call must drain all zombies. It reports
// whether no child at all is left (wait4 says ECHILD).
func (r *reaper) reapAll() (none bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return errors.Is(err, unix.ECHILD)
		}
		r.mu.Lock()
		r.reaped++
		ch, ok := r.waiting[pid]
		delete(r.waiting, pid)
		r.mu.Unlock()
		if ok {
			ch <- ws
		}
	}
}

// pending reports how many registered children have not exited yet.
func (r *reaper) pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.waiting)
}

func (r *reaper) reapedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reaped
}
