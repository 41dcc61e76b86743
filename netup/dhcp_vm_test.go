//go:build vmtest

package netup

// Privileged test of the real bring-up: rtnetlink (link up, carrier,
// address, default route) and a DHCP exchange over a raw socket against
// QEMU's user-network server. It runs as root in a QEMU guest with one
// virtio-net NIC (scripts/vmtest.sh, group "medium": -net). The expected
// values are QEMU's documented user-network defaults (guest 10.0.2.15/24,
// gateway and DHCP server 10.0.2.2, DNS 10.0.2.3), and the kernel's state
// is read back through a second path: vishvananda/netlink lists and sysfs.

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// QEMU's user networking ("slirp") defaults.
var (
	slirpGuest   = netip.MustParsePrefix("10.0.2.15/24")
	slirpGateway = netip.MustParseAddr("10.0.2.2")
	slirpDNS     = netip.MustParseAddr("10.0.2.3")
)

func TestVMDHCPOnUserNet(t *testing.T) {
	nics, err := FindNICs("/sys", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(nics) != 1 {
		t.Fatalf("NICs = %v, want the one virtio-net NIC", nics)
	}
	iface := nics[0].Name
	if drv, err := filepath.EvalSymlinks(filepath.Join("/sys/class/net", iface, "device", "driver")); err != nil || filepath.Base(drv) != "virtio_net" {
		t.Fatalf("%s driver %q, %v; want virtio_net", iface, drv, err)
	}
	link, err := netlink.LinkByName(iface)
	if err != nil {
		t.Fatal(err)
	}
	if link.Attrs().RawFlags&unix.IFF_UP != 0 {
		t.Fatalf("%s is already up before bring-up", iface)
	}

	// A DHCP transaction id comes from getrandom(2), which blocks until the
	// kernel's RNG is seeded: say so when a slow lease is that, not DHCP.
	if _, err := unix.Getrandom(make([]byte, 4), unix.GRND_NONBLOCK); err != nil {
		t.Logf("kernel RNG not seeded yet (%v): the first DHCP exchange waits for it", err)
	}
	run := t.TempDir()
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	n, err := New(Config{
		SysRoot: "/sys", RunDir: run, ResolvConf: resolv,
		Links: Netlink{}, DHCP: NClient4{},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- n.Run(ctx, func(s Status) { t.Logf("status: %s %q primary=%v", s.Word, s.Line, s.Primary) })
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	select {
	case <-n.Ready():
	case err := <-done:
		t.Fatalf("Run ended before a primary network: %v", err)
	case <-time.After(90 * time.Second):
		t.Fatalf("no primary network after 90 s: %+v", n.Snapshot())
	}

	// What netup wrote.
	b, err := os.ReadFile(filepath.Join(run, PrimaryNetFile))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePrimaryNet(b)
	if err != nil {
		t.Fatalf("primary-net %q: %v", b, err)
	}
	if p.Iface != iface || p.IP != slirpGuest.Addr() || p.Gateway != slirpGateway || !slices.Equal(p.DNS, []netip.Addr{slirpDNS}) {
		t.Fatalf("primary-net = %+v; want %s %s gw %s dns %s", p, iface, slirpGuest.Addr(), slirpGateway, slirpDNS)
	}
	rc, err := os.ReadFile(resolv)
	if err != nil || !strings.Contains(string(rc), "nameserver "+slirpDNS.String()+"\n") {
		t.Fatalf("resolv.conf = %q, %v", rc, err)
	}

	// What the kernel holds, read through another netlink client and sysfs.
	if link, err = netlink.LinkByName(iface); err != nil {
		t.Fatal(err)
	}
	if f := link.Attrs().RawFlags; f&unix.IFF_UP == 0 || f&unix.IFF_LOWER_UP == 0 {
		t.Errorf("%s flags %#x: not up with carrier", iface, f)
	}
	if c, err := os.ReadFile(filepath.Join("/sys/class/net", iface, "carrier")); err != nil || strings.TrimSpace(string(c)) != "1" {
		t.Errorf("sysfs carrier = %q, %v", c, err)
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.IPNet.String() == slirpGuest.String() }) {
		t.Errorf("addresses on %s = %v, want %s", iface, addrs, slirpGuest)
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	defaultVia := func(r netlink.Route) bool {
		isDefault := r.Dst == nil || r.Dst.String() == "0.0.0.0/0"
		return isDefault && r.Gw.Equal(net.IP(slirpGateway.AsSlice())) && r.LinkIndex == link.Attrs().Index
	}
	if !slices.ContainsFunc(routes, defaultVia) {
		t.Errorf("no default route via %s dev %s in %v", slirpGateway, iface, routes)
	}
	// The kernel routes to an outside address through that gateway.
	got, err := netlink.RouteGet(net.ParseIP("192.0.2.1"))
	if err != nil || len(got) == 0 || !got[0].Gw.Equal(net.IP(slirpGateway.AsSlice())) {
		t.Errorf("route to 192.0.2.1 = %v, %v; want via %s", got, err, slirpGateway)
	}
	ev := n.Snapshot()
	if ev.Primary == nil || ev.Primary.IP != slirpGuest.Addr() {
		t.Errorf("evidence primary = %+v", ev.Primary)
	}
}
