package netup

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// testBound caps every wait in a test: a hang fails instead of blocking CI.
const testBound = 10 * time.Second

// fakeClock is a manual clock; tests advance it and can await a timer
// being armed for an exact instant.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
	armed   chan struct{} // closed and replaced whenever a timer is armed
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), armed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	close(c.armed)
	c.armed = make(chan struct{})
	return ch
}

// advanceTo moves the clock to t and fires every timer due by then.
func (c *fakeClock) advanceTo(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(t) {
			w.ch <- t
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// awaitTimer blocks until a timer is armed for exactly at.
func (c *fakeClock) awaitTimer(t *testing.T, at time.Time) {
	t.Helper()
	bound := time.After(testBound)
	for {
		c.mu.Lock()
		armed := c.armed
		for _, w := range c.waiters {
			if w.at.Equal(at) {
				c.mu.Unlock()
				return
			}
		}
		var pending []time.Time
		for _, w := range c.waiters {
			pending = append(pending, w.at)
		}
		c.mu.Unlock()
		select {
		case <-armed:
		case <-bound:
			t.Fatalf("no timer armed for %v; pending %v", at, pending)
		}
	}
}

// fakeLinks records every kernel operation and serves carrier events.
type fakeLinks struct {
	mu      sync.Mutex
	ops     []string
	carrier map[string]bool
	events  chan LinkEvent
	changed chan struct{}
	fail    map[string]error // op kind ("up", "addr", "route") -> injected error
}

func newFakeLinks() *fakeLinks {
	return &fakeLinks{carrier: map[string]bool{}, events: make(chan LinkEvent, 16), changed: make(chan struct{}), fail: map[string]error{}}
}

func (f *fakeLinks) record(kind, op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail[kind]; err != nil {
		return err
	}
	f.ops = append(f.ops, op)
	close(f.changed)
	f.changed = make(chan struct{})
	return nil
}

func (f *fakeLinks) SetUp(name string) error { return f.record("up", "up "+name) }
func (f *fakeLinks) Carrier(name string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.carrier[name], nil
}
func (f *fakeLinks) Subscribe(ctx context.Context) (<-chan LinkEvent, error) {
	out := make(chan LinkEvent)
	go func() {
		defer close(out)
		for {
			select {
			case ev := <-f.events:
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
func (f *fakeLinks) ReplaceAddr(name string, a netip.Prefix, valid, preferred time.Duration) error {
	return f.record("addr", fmt.Sprintf("addr %s %s valid=%v preferred=%v", name, a, valid, preferred))
}
func (f *fakeLinks) DelAddr(name string, a netip.Prefix) error {
	return f.record("deladdr", fmt.Sprintf("deladdr %s %s", name, a))
}
func (f *fakeLinks) ReplaceDefaultRoute(name string, gw netip.Addr) error {
	return f.record("route", fmt.Sprintf("route %s via %s", name, gw))
}
func (f *fakeLinks) DelDefaultRoute(name string, gw netip.Addr) error {
	return f.record("delroute", fmt.Sprintf("delroute %s via %s", name, gw))
}

// plug changes carrier and sends the event the kernel would.
func (f *fakeLinks) plug(name string, on bool) {
	f.mu.Lock()
	f.carrier[name] = on
	f.mu.Unlock()
	f.events <- LinkEvent{Name: name, Carrier: on}
}

func (f *fakeLinks) has(op string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.ops {
		if o == op {
			return true
		}
	}
	return false
}

// awaitOp blocks until op has been recorded.
func (f *fakeLinks) awaitOp(t *testing.T, op string) {
	t.Helper()
	bound := time.After(testBound)
	for {
		f.mu.Lock()
		ch := f.changed
		ops := append([]string(nil), f.ops...)
		f.mu.Unlock()
		for _, o := range ops {
			if o == op {
				return
			}
		}
		select {
		case <-ch:
		case <-bound:
			t.Fatalf("operation %q never happened; ops: %q", op, ops)
		}
	}
}

// fakeDHCP hands each exchange to the test, which answers it.
type fakeDHCP struct {
	calls chan *dhcpCall
	mu    sync.Mutex
	held  map[string][]*dhcpCall // calls received but not yet claimed by the test
}

type dhcpCall struct {
	iface string
	renew bool
	held  Lease
	reply chan dhcpReply
}

type dhcpReply struct {
	lease Lease
	err   error
}

func newFakeDHCP() *fakeDHCP {
	return &fakeDHCP{calls: make(chan *dhcpCall, 16), held: map[string][]*dhcpCall{}}
}

func (f *fakeDHCP) exchange(ctx context.Context, c *dhcpCall) (Lease, error) {
	select {
	case f.calls <- c:
	case <-ctx.Done():
		return Lease{}, ctx.Err()
	}
	select {
	case r := <-c.reply:
		return r.lease, r.err
	case <-ctx.Done():
		return Lease{}, ctx.Err()
	}
}

func (f *fakeDHCP) Acquire(ctx context.Context, iface string) (Lease, error) {
	return f.exchange(ctx, &dhcpCall{iface: iface, reply: make(chan dhcpReply, 1)})
}

func (f *fakeDHCP) Renew(ctx context.Context, iface string, held Lease) (Lease, error) {
	return f.exchange(ctx, &dhcpCall{iface: iface, renew: true, held: held, reply: make(chan dhcpReply, 1)})
}

// next returns the next exchange on iface, in whatever order links asked.
func (f *fakeDHCP) next(t *testing.T, iface string) *dhcpCall {
	t.Helper()
	bound := time.After(testBound)
	for {
		f.mu.Lock()
		if q := f.held[iface]; len(q) > 0 {
			f.held[iface] = q[1:]
			f.mu.Unlock()
			return q[0]
		}
		f.mu.Unlock()
		select {
		case c := <-f.calls:
			f.mu.Lock()
			f.held[c.iface] = append(f.held[c.iface], c)
			f.mu.Unlock()
		case <-bound:
			t.Fatalf("no DHCP exchange on %s", iface)
		}
	}
}

// statusLog collects reports so tests can await a line.
type statusLog struct {
	mu   sync.Mutex
	all  []Status
	more chan struct{}
}

func newStatusLog() *statusLog { return &statusLog{more: make(chan struct{})} }

func (s *statusLog) report(st Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all = append(s.all, st)
	close(s.more)
	s.more = make(chan struct{})
}

// await returns the first report (from index from on) that match accepts.
func (s *statusLog) await(t *testing.T, what string, match func(Status) bool) Status {
	t.Helper()
	bound := time.After(testBound)
	for {
		s.mu.Lock()
		ch := s.more
		for _, st := range s.all {
			if match(st) {
				s.mu.Unlock()
				return st
			}
		}
		lines := make([]string, len(s.all))
		for i, st := range s.all {
			lines[i] = st.Line
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-bound:
			t.Fatalf("no status %s; got %q", what, lines)
		}
	}
}

func (s *statusLog) awaitLine(t *testing.T, line string) Status {
	t.Helper()
	return s.await(t, fmt.Sprintf("%q", line), func(st Status) bool { return st.Line == line })
}

// fakeSysfs builds <root>/class/net entries; physical ones get a device link.
func fakeSysfs(t *testing.T, physical []string, virtual []string) string {
	t.Helper()
	root := t.TempDir()
	devices := filepath.Join(root, "devices", "pci0000:00")
	for _, name := range physical {
		dir := filepath.Join(root, "class", "net", name)
		must(t, os.MkdirAll(dir, 0o755))
		dev := filepath.Join(devices, name)
		must(t, os.MkdirAll(dev, 0o755))
		must(t, os.Symlink(dev, filepath.Join(dir, "device")))
	}
	for _, name := range virtual {
		must(t, os.MkdirAll(filepath.Join(root, "class", "net", name), 0o755))
	}
	return root
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
