package netup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Config is what bring-up needs; Links and DHCP are required.
type Config struct {
	// SysRoot is where sysfs is mounted ("/sys"); NICs are read from
	// SysRoot/class/net.
	SysRoot string
	// RunDir receives primary-net.
	RunDir string
	// ResolvConf is the resolv.conf path ("/etc/resolv.conf"); empty skips it.
	ResolvConf string
	Links      LinkManager
	DHCP       Client
	// Wifi, when set, enables wl* interfaces with these credentials.
	Wifi *WifiConfig
	// Radio and Supplicant drive WiFi; nil means MdlayherRadio and
	// ExecSupplicant.
	Radio      Radio
	Supplicant Supplicant
	// WifiWait bounds the waits for a wl* interface and for association
	// before a status line says why not (waiting goes on); 0 means 30 s.
	WifiWait time.Duration
	// Clock times renewals and retries; nil means the real clock.
	Clock Clock
	// CarrierWait bounds the first wait for carrier before a link reports
	// "no cable" (it keeps waiting afterwards); 0 means 5 s.
	CarrierWait time.Duration
}

const (
	defaultCarrierWait = 5 * time.Second
	defaultWifiWait    = 30 * time.Second
)

// Net is one network bring-up: Run drives it, Ready and Snapshot observe it.
type Net struct {
	cfg   Config
	clk   Clock
	ready chan struct{}

	reportMu sync.Mutex // keeps reports in the order of the state changes
	report   func(Status)

	mu           sync.Mutex
	sel          *selector
	applied      *Lease // the primary lease as last applied to the system
	links        map[string]*linkState
	linksChanged chan struct{} // closed and replaced when a link starts
	promoted     bool

	ctx  context.Context
	hub  *linkHub
	wg   sync.WaitGroup
	wifi wifiState
}

// New checks cfg and returns a Net ready to Run.
func New(cfg Config) (*Net, error) {
	if cfg.Links == nil || cfg.DHCP == nil {
		return nil, fmt.Errorf("%w: Links and DHCP are required", ErrConfig)
	}
	if cfg.SysRoot == "" || cfg.RunDir == "" {
		return nil, fmt.Errorf("%w: SysRoot and RunDir are required", ErrConfig)
	}
	if cfg.Wifi != nil {
		if err := cfg.Wifi.validate(); err != nil {
			return nil, err
		}
	}
	clk := cfg.Clock
	if clk == nil {
		clk = realClock{}
	}
	if cfg.CarrierWait <= 0 {
		cfg.CarrierWait = defaultCarrierWait
	}
	if cfg.WifiWait <= 0 {
		cfg.WifiWait = defaultWifiWait
	}
	if cfg.Radio == nil {
		cfg.Radio = MdlayherRadio{}
	}
	return &Net{cfg: cfg, clk: clk, ready: make(chan struct{}), sel: newSelector(), links: map[string]*linkState{},
		linksChanged: make(chan struct{}), wifi: wifiState{changed: make(chan struct{})}}, nil
}

// Run is New followed by Net.Run, for callers that need neither Ready nor
// Snapshot.
func Run(ctx context.Context, cfg Config, report func(Status)) error {
	n, err := New(cfg)
	if err != nil {
		return err
	}
	return n.Run(ctx, report)
}

// Ready is closed once a primary network exists for the first time, so a
// debug-mode caller can wait for the network; prod callers do not wait.
func (n *Net) Ready() <-chan struct{} { return n.ready }

// Run brings up every physical NIC and keeps their leases until ctx ends,
// then returns nil. It returns early only when sysfs cannot be read at all.
// report receives every status change; it must not block for long.
func (n *Net) Run(ctx context.Context, report func(Status)) error {
	if report == nil {
		report = func(Status) {}
	}
	n.report = report
	nics, err := FindNICs(n.cfg.SysRoot, n.cfg.Wifi != nil)
	if err != nil {
		n.emit(Status{Word: WordDHCP, Line: lineNoNIC()})
		return err
	}
	n.mu.Lock()
	n.ctx = ctx
	n.hub = newLinkHub(n.cfg.Links, n.clk, n.hotplug)
	n.mu.Unlock()
	// Subscribe before looking at any link so no carrier change is missed.
	if events, err := n.cfg.Links.Subscribe(ctx); err == nil {
		go n.hub.run(ctx, events)
	} else {
		closed := make(chan LinkEvent)
		close(closed)
		go n.hub.run(ctx, closed)
	}
	if len(nics) == 0 {
		n.emit(Status{Word: WordDHCP, Line: lineNoNIC()})
	}
	for _, nic := range nics {
		n.start(nic)
	}
	if n.cfg.Wifi != nil {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.awaitWirelessLink(ctx)
		}()
	}
	<-ctx.Done()
	n.wg.Wait()
	return nil
}

// hotplug starts a link that appeared after Run began (a late driver, a
// USB adapter); it is called for every link name the hub sees first.
func (n *Net) hotplug(name string) {
	nic, ok := physicalNIC(n.cfg.SysRoot, name)
	if !ok || (nic.Wireless && n.cfg.Wifi == nil) {
		return
	}
	n.start(nic)
}

// start runs one link's worker unless it already has one.
func (n *Net) start(nic NIC) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, running := n.links[nic.Name]; running || n.ctx == nil || n.ctx.Err() != nil {
		return
	}
	n.links[nic.Name] = &linkState{NIC: nic, State: stateStarting}
	close(n.linksChanged)
	n.linksChanged = make(chan struct{})
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.runLink(n.ctx, nic)
	}()
}

// runLink is one link's life: up, carrier, lease, renewals, and again.
func (n *Net) runLink(ctx context.Context, nic NIC) {
	name := nic.Name
	since := n.clk.Now()
	if err := n.cfg.Links.SetUp(name); err != nil {
		n.setLink(name, stateFailed, lineLinkFailed(name))
		return
	}
	if nic.Wireless {
		n.runWifi(ctx, nic, since)
		return
	}
	n.dhcpLoop(ctx, name, since, nil)
}

// dhcpLoop acquires and holds leases on a link until ctx ends. When
// precondition is set (WiFi association) it is awaited instead of carrier.
func (n *Net) dhcpLoop(ctx context.Context, name string, since time.Time, precondition func(context.Context) bool) {
	failures := 0
	for ctx.Err() == nil {
		if precondition != nil {
			if !precondition(ctx) {
				return
			}
		} else if !n.awaitCarrier(ctx, name) {
			return
		}
		if since.IsZero() {
			since = n.clk.Now() // a later lease is timed from its carrier
		}
		n.setLink(name, stateDHCP, lineAsking(name))
		lease, err := n.cfg.DHCP.Acquire(ctx, name)
		if err == nil {
			err = n.applyAddr(lease)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			n.setLink(name, stateNoLease, lineForError(name, err))
			if !sleep(ctx, n.clk, retryBackoff(failures)) {
				return
			}
			continue
		}
		failures = 0
		n.offer(lease, n.clk.Now().Sub(since))
		since = time.Time{}
		lease = n.hold(ctx, lease)
		if ctx.Err() != nil {
			return
		}
		n.lose(lease)
	}
}

// awaitCarrier waits for carrier: bounded first, then reporting "no cable"
// and waiting for as long as ctx lives (a cable may be plugged later).
func (n *Net) awaitCarrier(ctx context.Context, name string) bool {
	what := "carrier on " + name
	err := waitFor(ctx, n.clk, what, n.cfg.CarrierWait, n.hub.hasCarrier(name))
	if err == nil {
		return true
	}
	if !errors.Is(err, ErrTimeout) {
		return false
	}
	n.setLink(name, stateNoCarrier, lineNoCable(name))
	return waitFor(ctx, n.clk, what, 0, n.hub.hasCarrier(name)) == nil
}

// hold renews lease at the times nextRenewal gives until it is lost or ctx
// ends, and returns the lease last held.
func (n *Net) hold(ctx context.Context, lease Lease) Lease {
	retry := false
	for {
		at, renewable, lost := nextRenewal(lease, n.clk.Now(), retry)
		if lost {
			return lease
		}
		if !renewable {
			<-ctx.Done()
			return lease
		}
		if !sleep(ctx, n.clk, at.Sub(n.clk.Now())) {
			return lease
		}
		if !n.clk.Now().Before(lease.Expires()) {
			return lease
		}
		renewed, err := n.cfg.DHCP.Renew(ctx, lease.Iface, lease)
		if err == nil {
			err = n.applyAddr(renewed)
		}
		switch {
		case ctx.Err() != nil:
			return lease
		case errors.Is(err, ErrNAK):
			return lease // the server took it back: start over now
		case err != nil:
			retry = true
			continue
		}
		retry = false
		lease = renewed
		n.offer(lease, 0)
	}
}

// applyAddr puts the leased address on the link with what is left of its
// lifetime, so the kernel drops it by itself if netup ever stops renewing.
func (n *Net) applyAddr(l Lease) error {
	var life time.Duration
	if !l.Infinite {
		life = max(l.Expires().Sub(n.clk.Now()), time.Second)
	}
	return n.cfg.Links.ReplaceAddr(l.Iface, l.Addr, life, life)
}

// offer records a new or renewed lease and applies the primary it yields.
func (n *Net) offer(l Lease, elapsed time.Duration) {
	n.mu.Lock()
	st := n.linkLocked(l.Iface)
	fresh := st.Lease == nil || st.Lease.Addr != l.Addr
	st.State, st.Lease = stateLeased, &l
	primary, ok := n.sel.put(l)
	out := n.applyPrimaryLocked(primary, ok, elapsed)
	switch {
	case !l.HasRouter():
		st.Detail = lineNoRouter(l)
		out = append(out, Status{Word: WordDHCP, Line: st.Detail, Secondary: n.applied != nil})
	case fresh && (n.applied == nil || n.applied.Iface != l.Iface):
		// A second network's lease: said once, so the log and the
		// evidence show every held address, not only the primary.
		st.Detail = lineSecondary(l)
		out = append(out, Status{Word: WordDHCP, Line: st.Detail, Secondary: true})
	}
	n.emitUnlock(out)
}

// lose forgets a lease that ended and takes its address off the link.
func (n *Net) lose(l Lease) {
	n.mu.Lock()
	st := n.linkLocked(l.Iface)
	st.State, st.Lease, st.Detail = stateDHCP, nil, lineLost(l.Iface)
	primary, ok := n.sel.drop(l.Iface)
	out := n.applyPrimaryLocked(primary, ok, 0)
	out = append(out, Status{Word: WordDHCP, Line: st.Detail, Secondary: n.applied != nil})
	n.emitUnlock(out)
	// The address may already have expired in the kernel; nothing to do then.
	_ = n.cfg.Links.DelAddr(l.Iface, l.Addr)
}

// applyPrimaryLocked makes the system match the selector's choice: default
// route, resolv.conf and primary-net, and says what changed.
func (n *Net) applyPrimaryLocked(l Lease, ok bool, elapsed time.Duration) []Status {
	old := n.applied
	if !ok {
		if old == nil {
			return nil
		}
		_ = n.cfg.Links.DelDefaultRoute(old.Iface, old.Router)
		n.applied = nil
		line := lineNoPrimary()
		if RemovePrimaryNet(n.cfg.RunDir) != nil {
			line = lineStalePrimary()
		}
		return []Status{{Word: WordDHCP, Line: line, PrimaryLost: true}}
	}
	if old != nil && samePrimary(*old, l) {
		return nil
	}
	if old != nil && (old.Iface != l.Iface || old.Router != l.Router) {
		_ = n.cfg.Links.DelDefaultRoute(old.Iface, old.Router)
	}
	p := primaryFromLease(l)
	err := n.cfg.Links.ReplaceDefaultRoute(l.Iface, l.Router)
	if err == nil && n.cfg.ResolvConf != "" {
		err = WriteResolvConf(n.cfg.ResolvConf, Resolver{Nameservers: l.DNS, Search: l.Search})
	}
	if err == nil {
		err = WritePrimaryNet(n.cfg.RunDir, p)
	}
	if err != nil {
		// Not applied: the next renewal of this lease tries again.
		n.applied = nil
		return []Status{{Word: WordDHCP, Line: lineLinkFailed(l.Iface)}}
	}
	applied := l
	n.applied = &applied
	st := Status{Line: linePrimary(p), Primary: &p}
	n.linkLocked(l.Iface).Detail = st.Line
	if !n.promoted {
		n.promoted = true
		st.Elapsed = elapsed
		close(n.ready)
	}
	return []Status{st}
}

// samePrimary reports whether applying b would change nothing from a.
func samePrimary(a, b Lease) bool {
	return a.Iface == b.Iface && a.Addr == b.Addr && a.Router == b.Router &&
		slices.Equal(a.DNS, b.DNS) && slices.Equal(a.Search, b.Search)
}

// setLink records a link's state and reports its line.
func (n *Net) setLink(name, state, line string) { n.setLinkWord(name, state, WordDHCP, line) }

func (n *Net) setLinkWord(name, state, word, line string) {
	n.mu.Lock()
	st := n.linkLocked(name)
	st.State, st.Detail = state, line
	secondary := n.applied != nil && n.applied.Iface != name
	n.emitUnlock([]Status{{Word: word, Line: line, Secondary: secondary}})
}

// emitUnlock releases n.mu and reports out, in the order the state changed.
func (n *Net) emitUnlock(out []Status) {
	n.reportMu.Lock()
	n.mu.Unlock()
	defer n.reportMu.Unlock()
	for _, s := range out {
		n.report(s)
	}
}

func (n *Net) emit(s Status) {
	n.reportMu.Lock()
	defer n.reportMu.Unlock()
	n.report(s)
}

// lineForError turns a bring-up error into the line a person reads.
func lineForError(iface string, err error) string {
	switch {
	case errors.Is(err, ErrNAK):
		return lineRefused(iface)
	case errors.Is(err, ErrBadLease):
		return lineBadLease(iface)
	case errors.Is(err, ErrLink):
		return lineLinkFailed(iface)
	default:
		return lineNoAnswer(iface)
	}
}
