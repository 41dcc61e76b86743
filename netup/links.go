package netup

import (
	"context"
	"net/netip"
	"sync"
	"time"
)

// LinkManager is the kernel side of links, addresses and routes that netup
// needs. Production uses Netlink; tests pass a recording fake.
type LinkManager interface {
	// SetUp brings the named link administratively up.
	SetUp(name string) error
	// Carrier reports whether the link has carrier (IFF_LOWER_UP).
	Carrier(name string) (bool, error)
	// Subscribe delivers link changes until ctx ends, then closes the channel.
	Subscribe(ctx context.Context) (<-chan LinkEvent, error)
	// ReplaceAddr sets addr on the link with the given lifetimes (0: forever).
	ReplaceAddr(name string, addr netip.Prefix, valid, preferred time.Duration) error
	// DelAddr removes addr from the link.
	DelAddr(name string, addr netip.Prefix) error
	// ReplaceDefaultRoute points the IPv4 default route at gw through the link.
	ReplaceDefaultRoute(name string, gw netip.Addr) error
	// DelDefaultRoute removes that default route.
	DelDefaultRoute(name string, gw netip.Addr) error
}

// LinkEvent is one link change seen on netlink.
type LinkEvent struct {
	Name    string
	Carrier bool
}

// linkHub keeps the last known carrier of every link from one netlink
// subscription and wakes waiters on every change, so carrier waits are
// event-driven rather than polled.
type linkHub struct {
	links LinkManager
	clk   Clock
	// onNew is called (from the hub goroutine) for a link name not seen before.
	onNew func(name string)

	mu      sync.Mutex
	carrier map[string]bool
	changed chan struct{}
	dead    bool // the subscription ended; waiters fall back to polling
}

// pollInterval is used only when the netlink subscription has failed.
const pollInterval = time.Second

func newLinkHub(links LinkManager, clk Clock, onNew func(string)) *linkHub {
	return &linkHub{links: links, clk: clk, onNew: onNew, carrier: map[string]bool{}, changed: make(chan struct{})}
}

// run applies events until the channel closes.
func (h *linkHub) run(ctx context.Context, events <-chan LinkEvent) {
	for ev := range events {
		h.mu.Lock()
		_, known := h.carrier[ev.Name]
		h.carrier[ev.Name] = ev.Carrier
		h.wakeLocked()
		h.mu.Unlock()
		if !known && h.onNew != nil {
			h.onNew(ev.Name)
		}
	}
	h.mu.Lock()
	h.dead = true
	h.wakeLocked()
	h.mu.Unlock()
	// Without events, wake waiters periodically so they re-query.
	go func() {
		for sleep(ctx, h.clk, pollInterval) {
			h.mu.Lock()
			h.wakeLocked()
			h.mu.Unlock()
		}
	}()
}

func (h *linkHub) wakeLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// hasCarrier is a waitFor condition: carrier on name.
func (h *linkHub) hasCarrier(name string) func() (bool, <-chan struct{}) {
	return func() (bool, <-chan struct{}) {
		h.mu.Lock()
		c, known := h.carrier[name]
		dead := h.dead
		ch := h.changed
		h.mu.Unlock()
		if !known || dead {
			// Query the kernel: a link that has not changed since the
			// subscription started sends no event.
			q, err := h.links.Carrier(name)
			if err == nil {
				c = q
				h.mu.Lock()
				if _, raced := h.carrier[name]; !raced || dead {
					h.carrier[name] = q
				}
				h.mu.Unlock()
			}
		}
		return c, ch
	}
}

// current reports the last known carrier without querying.
func (h *linkHub) current(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.carrier[name]
}
