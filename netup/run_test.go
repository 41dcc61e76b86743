package netup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

type env struct {
	clk    *fakeClock
	links  *fakeLinks
	dhcp   *fakeDHCP
	log    *statusLog
	net    *Net
	runDir string
	resolv string
	cancel context.CancelFunc
	done   chan error
}

// startNet runs a Net over fakes; carrier is already up on every link in up.
func startNet(t *testing.T, physical []string, up []string, wifi *WifiConfig) *env {
	t.Helper()
	e := &env{clk: newFakeClock(), links: newFakeLinks(), dhcp: newFakeDHCP(), log: newStatusLog(), done: make(chan error, 1)}
	for _, name := range up {
		e.links.carrier[name] = true
	}
	e.runDir = t.TempDir()
	e.resolv = filepath.Join(t.TempDir(), "resolv.conf")
	n, err := New(Config{SysRoot: fakeSysfs(t, physical, []string{"lo", "docker0"}), RunDir: e.runDir,
		ResolvConf: e.resolv, Links: e.links, DHCP: e.dhcp, Wifi: wifi, Clock: e.clk})
	must(t, err)
	e.net = n
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() { e.done <- n.Run(ctx, e.log.report) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-e.done:
		case <-time.After(testBound):
			t.Error("Run did not return after cancel")
		}
	})
	return e
}

func mkLease(clk Clock, iface, addr, router string, dns ...string) Lease {
	l := Lease{Iface: iface, Addr: netip.MustParsePrefix(addr), Acquired: clk.Now()}
	if router != "" {
		l.Router = netip.MustParseAddr(router)
	}
	for _, d := range dns {
		l.DNS = append(l.DNS, netip.MustParseAddr(d))
	}
	l.Search = []string{"example.internal"}
	l.setTimes(24*time.Hour, 0, 0)
	return l
}

func addrOp(l Lease, life time.Duration) string {
	return fmt.Sprintf("addr %s %s valid=%v preferred=%v", l.Iface, l.Addr, life, life)
}

func readPrimary(t *testing.T, runDir string) (Primary, error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(runDir, PrimaryNetFile))
	if err != nil {
		return Primary{}, err
	}
	return ParsePrimaryNet(b)
}

func TestQEMUUserNetLease(t *testing.T) {
	e := startNet(t, []string{"eth0"}, []string{"eth0"}, nil)
	call := e.dhcp.next(t, "eth0")
	if call.renew {
		t.Fatal("first exchange is a renewal")
	}
	l := mkLease(e.clk, "eth0", "10.0.2.15/24", "10.0.2.2", "10.0.2.3")
	call.reply <- dhcpReply{lease: l}

	st := e.log.awaitLine(t, "Network: 10.0.2.15 on eth0.")
	if st.Primary == nil || st.Primary.IP != l.Addr.Addr() || st.Primary.Gateway != l.Router || !slices.Equal(st.Primary.DNS, l.DNS) {
		t.Fatalf("status primary %+v does not match lease %+v", st.Primary, l)
	}
	select {
	case <-e.net.Ready():
	default:
		t.Fatal("Ready not closed after the primary was taken")
	}
	for _, op := range []string{"up eth0", addrOp(l, l.Duration), "route eth0 via 10.0.2.2"} {
		if !e.links.has(op) {
			t.Errorf("missing kernel operation %q; got %q", op, e.links.ops)
		}
	}
	p, err := readPrimary(t, e.runDir)
	must(t, err)
	if p.Iface != "eth0" || p.IP != l.Addr.Addr() || p.Gateway != l.Router || !slices.Equal(p.DNS, l.DNS) {
		t.Fatalf("primary-net %+v does not match lease", p)
	}
	rb, err := os.ReadFile(e.resolv)
	must(t, err)
	r, err := ParseResolvConf(rb)
	must(t, err)
	if !slices.Equal(r.Nameservers, l.DNS) || !slices.Equal(r.Search, l.Search) {
		t.Fatalf("resolv.conf %+v does not match lease", r)
	}
	ev := e.net.Snapshot()
	js, err := json.Marshal(ev)
	must(t, err)
	var back NetworkEvidence
	must(t, json.Unmarshal(js, &back))
	if back.Primary == nil || back.Primary.IP != l.Addr.Addr() || len(back.Interfaces) != 1 ||
		back.Interfaces[0].State != stateLeased || back.Interfaces[0].Address != l.Addr.String() {
		t.Fatalf("evidence does not show the lease: %s", js)
	}
}

func TestRouterlessLeaseNeverPromoted(t *testing.T) {
	e := startNet(t, []string{"eth0", "eth1"}, []string{"eth0", "eth1"}, nil)
	bare := mkLease(e.clk, "eth0", "192.168.50.7/24", "")
	e.dhcp.next(t, "eth0").reply <- dhcpReply{lease: bare}
	e.log.awaitLine(t, lineNoRouter(bare))
	e.links.awaitOp(t, addrOp(bare, bare.Duration))
	if _, err := os.Stat(filepath.Join(e.runDir, PrimaryNetFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("primary-net exists after a router-less lease: %v", err)
	}

	routed := mkLease(e.clk, "eth1", "10.9.0.5/16", "10.9.0.1", "10.9.0.1")
	e.dhcp.next(t, "eth1").reply <- dhcpReply{lease: routed}
	e.log.awaitLine(t, "Network: 10.9.0.5 on eth1.")
	p, err := readPrimary(t, e.runDir)
	must(t, err)
	if p.Iface != "eth1" {
		t.Fatalf("primary is %s, want the link with a router", p.Iface)
	}
	for _, op := range e.links.ops {
		if strings.HasPrefix(op, "route eth0") {
			t.Fatalf("router-less link got a default route: %q", op)
		}
	}
}

func TestFirstRoutedLeaseWinsAndFailsOver(t *testing.T) {
	e := startNet(t, []string{"eth0", "eth1"}, []string{"eth0", "eth1"}, nil)
	first := mkLease(e.clk, "eth1", "10.1.0.9/24", "10.1.0.1")
	e.dhcp.next(t, "eth1").reply <- dhcpReply{lease: first}
	e.log.awaitLine(t, "Network: 10.1.0.9 on eth1.")
	second := mkLease(e.clk, "eth0", "10.2.0.9/24", "10.2.0.1")
	e.dhcp.next(t, "eth0").reply <- dhcpReply{lease: second}
	e.links.awaitOp(t, addrOp(second, second.Duration))
	if st := e.log.awaitLine(t, lineSecondary(second)); !st.Secondary || st.Primary != nil {
		t.Fatalf("the second lease's report %+v: want a secondary line", st)
	}
	if p, _ := readPrimary(t, e.runDir); p.Iface != "eth1" {
		t.Fatalf("a later lease took over the primary: %+v", p)
	}

	// eth1's server NAKs the renewal at T1: eth1 loses it, eth0 takes over.
	e.clk.awaitTimer(t, first.Acquired.Add(first.T1))
	e.clk.advanceTo(first.Acquired.Add(first.T1))
	e.dhcp.next(t, "eth1").reply <- dhcpReply{err: fmt.Errorf("%w: test", ErrNAK)}
	e.log.awaitLine(t, "Network: 10.2.0.9 on eth0.")
	e.links.awaitOp(t, "delroute eth1 via 10.1.0.1")
	e.links.awaitOp(t, "deladdr eth1 10.1.0.9/24")
	p, err := readPrimary(t, e.runDir)
	must(t, err)
	if p.Iface != "eth0" || p.Gateway != second.Router {
		t.Fatalf("primary-net after failover: %+v", p)
	}
	for _, ie := range e.net.Snapshot().Interfaces {
		if ie.Name == "eth0" && ie.Detail != "Network: 10.2.0.9 on eth0." {
			t.Errorf("eth0's evidence detail %q after it became primary", ie.Detail)
		}
	}
	// And eth1 starts over with a new discovery at once.
	if c := e.dhcp.next(t, "eth1"); c.renew {
		t.Fatal("after a NAK the link renewed instead of discovering")
	}
}

func TestRenewalTimingAndLoss(t *testing.T) {
	e := startNet(t, []string{"eth0"}, []string{"eth0"}, nil)
	l := mkLease(e.clk, "eth0", "10.0.2.15/24", "10.0.2.2", "10.0.2.3")
	l.setTimes(1000*time.Second, 400*time.Second, 800*time.Second)
	e.dhcp.next(t, "eth0").reply <- dhcpReply{lease: l}
	e.log.awaitLine(t, "Network: 10.0.2.15 on eth0.")

	// First renewal exactly at T1; the server answers with a fresh lease.
	t1 := l.Acquired.Add(l.T1)
	e.clk.awaitTimer(t, t1)
	e.clk.advanceTo(t1)
	c := e.dhcp.next(t, "eth0")
	if !c.renew || c.held.Addr != l.Addr {
		t.Fatalf("expected renewal of %v, got %+v", l.Addr, c)
	}
	renewed := l
	renewed.Acquired = e.clk.Now()
	c.reply <- dhcpReply{lease: renewed}
	e.links.awaitOp(t, addrOp(renewed, renewed.Duration))

	// From now on the server is silent: retries at half the time left to
	// T2, then to expiry, at least a minute apart, then the lease is lost.
	now := renewed.Acquired
	next := now.Add(renewed.T1)
	for i := 0; ; i++ {
		if i > 20 {
			t.Fatal("renewal retries never ended")
		}
		e.clk.awaitTimer(t, next)
		e.clk.advanceTo(next)
		now = next
		if !now.Before(renewed.Expires()) {
			break
		}
		e.dhcp.next(t, "eth0").reply <- dhcpReply{err: fmt.Errorf("%w: silent", ErrNoAnswer)}
		limit := renewed.Acquired.Add(renewed.T2)
		if !now.Before(limit) {
			limit = renewed.Expires()
		}
		wait := limit.Sub(now) / 2
		if wait < time.Minute {
			wait = time.Minute
		}
		next = now.Add(wait)
		if next.After(renewed.Expires()) {
			next = renewed.Expires()
		}
	}
	st := e.log.await(t, "primary lost", func(s Status) bool { return s.PrimaryLost })
	if st.Line != lineNoPrimary() {
		t.Fatalf("loss line %q", st.Line)
	}
	e.links.awaitOp(t, "deladdr eth0 10.0.2.15/24")
	if _, err := os.Stat(filepath.Join(e.runDir, PrimaryNetFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("primary-net still present after the lease expired: %v", err)
	}
	if c := e.dhcp.next(t, "eth0"); c.renew {
		t.Fatal("expected a new discovery after loss")
	}
}

func TestNoCableThenPlugged(t *testing.T) {
	e := startNet(t, []string{"eth0"}, nil, nil)
	e.links.awaitOp(t, "up eth0")
	e.clk.awaitTimer(t, e.clk.Now().Add(defaultCarrierWait))
	e.clk.advanceTo(e.clk.Now().Add(defaultCarrierWait))
	e.log.awaitLine(t, "eth0: no cable.")
	select {
	case c := <-e.dhcp.calls:
		t.Fatalf("DHCP ran without carrier: %+v", c)
	default:
	}
	e.links.plug("eth0", true)
	l := mkLease(e.clk, "eth0", "10.0.2.15/24", "10.0.2.2")
	e.dhcp.next(t, "eth0").reply <- dhcpReply{lease: l}
	e.log.awaitLine(t, "Network: 10.0.2.15 on eth0.")
}

func TestDHCPFaults(t *testing.T) {
	cases := []struct {
		name string
		err  error
		line string
	}{
		{"timeout", fmt.Errorf("%w: eth0", ErrNoAnswer), "eth0: no DHCP answer."},
		{"nak", fmt.Errorf("%w: eth0", ErrNAK), "eth0: DHCP server refused the request."},
		{"bad lease", fmt.Errorf("%w: eth0", ErrBadLease), "eth0: DHCP answer unusable."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := startNet(t, []string{"eth0"}, []string{"eth0"}, nil)
			c := e.dhcp.next(t, "eth0")
			retryAt := e.clk.Now().Add(retryBackoff(1))
			c.reply <- dhcpReply{err: tc.err}
			e.log.awaitLine(t, tc.line)
			if _, err := os.Stat(filepath.Join(e.runDir, PrimaryNetFile)); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("primary-net written after a failed exchange")
			}
			// The link retries after its backoff and then succeeds.
			e.clk.awaitTimer(t, retryAt)
			e.clk.advanceTo(retryAt)
			l := mkLease(e.clk, "eth0", "10.0.2.15/24", "10.0.2.2")
			e.dhcp.next(t, "eth0").reply <- dhcpReply{lease: l}
			st := e.log.awaitLine(t, "Network: 10.0.2.15 on eth0.")
			if st.Elapsed < retryBackoff(1) {
				t.Fatalf("elapsed %v should cover the retry wait (>= %v)", st.Elapsed, retryBackoff(1))
			}
		})
	}
}

func TestKernelFaults(t *testing.T) {
	cases := []struct {
		kind string
		line string
	}{
		{"up", "eth0: cannot configure the link."},
		{"addr", "eth0: cannot configure the link."},
		{"route", "eth0: cannot configure the link."},
	}
	for _, tc := range cases {
		t.Run(tc.kind, func(t *testing.T) {
			clk := newFakeClock()
			links := newFakeLinks()
			links.carrier["eth0"] = true
			links.fail[tc.kind] = fmt.Errorf("%w: injected", ErrLink)
			dhcp := newFakeDHCP()
			log := newStatusLog()
			runDir := t.TempDir()
			n, err := New(Config{SysRoot: fakeSysfs(t, []string{"eth0"}, nil), RunDir: runDir, Links: links, DHCP: dhcp, Clock: clk})
			must(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- n.Run(ctx, log.report) }()
			if tc.kind != "up" {
				dhcp.next(t, "eth0").reply <- dhcpReply{lease: mkLease(clk, "eth0", "10.0.2.15/24", "10.0.2.2")}
			}
			log.awaitLine(t, tc.line)
			if _, err := os.Stat(filepath.Join(runDir, PrimaryNetFile)); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("primary-net written although the kernel refused the configuration")
			}
			select {
			case <-n.Ready():
				t.Fatal("Ready closed without a working primary")
			default:
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
		})
	}
}

func TestNoNIC(t *testing.T) {
	e := startNet(t, nil, nil, nil)
	e.log.awaitLine(t, "No network interface found.")
	// A NIC whose driver loads late is picked up from its netlink event.
	root := e.net.cfg.SysRoot
	dev := filepath.Join(root, "devices", "usb-eth")
	must(t, os.MkdirAll(dev, 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "class", "net", "enx0"), 0o755))
	must(t, os.Symlink(dev, filepath.Join(root, "class", "net", "enx0", "device")))
	e.links.plug("enx0", true)
	e.dhcp.next(t, "enx0").reply <- dhcpReply{lease: mkLease(e.clk, "enx0", "10.0.2.15/24", "10.0.2.2")}
	e.log.awaitLine(t, "Network: 10.0.2.15 on enx0.")
}

func TestRunReturnsOnCancel(t *testing.T) {
	e := startNet(t, []string{"eth0"}, []string{"eth0"}, nil)
	e.dhcp.next(t, "eth0") // an exchange is in flight
	e.cancel()
	select {
	case err := <-e.done:
		if err != nil {
			t.Fatalf("Run returned %v after cancel", err)
		}
		e.done <- nil // for the cleanup
	case <-time.After(testBound):
		t.Fatal("Run did not return after cancel")
	}
}

func TestNewRejectsIncompleteConfig(t *testing.T) {
	good := Config{SysRoot: "/sys", RunDir: "/run", Links: newFakeLinks(), DHCP: newFakeDHCP()}
	cases := map[string]func(c *Config){
		"no links":  func(c *Config) { c.Links = nil },
		"no dhcp":   func(c *Config) { c.DHCP = nil },
		"no sys":    func(c *Config) { c.SysRoot = "" },
		"no rundir": func(c *Config) { c.RunDir = "" },
	}
	for name, breakIt := range cases {
		c := good
		breakIt(&c)
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: got %v, want ErrConfig", name, err)
		}
	}
	if _, err := New(good); err != nil {
		t.Fatalf("good config refused: %v", err)
	}
}
