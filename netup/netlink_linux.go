package netup

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Netlink is the production LinkManager over rtnetlink.
type Netlink struct{}

func (Netlink) link(name string) (netlink.Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrLink, name, err)
	}
	return l, nil
}

// SetUp implements LinkManager.
func (n Netlink) SetUp(name string) error {
	l, err := n.link(name)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("%w: %s up: %v", ErrLink, name, err)
	}
	return nil
}

// Carrier implements LinkManager.
func (n Netlink) Carrier(name string) (bool, error) {
	l, err := n.link(name)
	if err != nil {
		return false, err
	}
	return l.Attrs().RawFlags&unix.IFF_LOWER_UP != 0, nil
}

// Subscribe implements LinkManager.
func (Netlink) Subscribe(ctx context.Context) (<-chan LinkEvent, error) {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	if err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{}); err != nil {
		return nil, fmt.Errorf("%w: subscribe: %v", ErrLink, err)
	}
	out := make(chan LinkEvent, 64)
	go func() {
		defer close(out)
		stop := context.AfterFunc(ctx, func() { close(done) })
		defer stop()
		for u := range updates {
			if u.Link == nil || u.Header.Type == unix.RTM_DELLINK {
				continue
			}
			ev := LinkEvent{Name: u.Attrs().Name, Carrier: u.IfInfomsg.Flags&unix.IFF_LOWER_UP != 0}
			select {
			case out <- ev:
			case <-ctx.Done():
				// Keep draining so the library's goroutine can exit.
			}
		}
	}()
	return out, nil
}

// ReplaceAddr implements LinkManager.
func (n Netlink) ReplaceAddr(name string, addr netip.Prefix, valid, preferred time.Duration) error {
	l, err := n.link(name)
	if err != nil {
		return err
	}
	a := &netlink.Addr{IPNet: prefixToIPNet(addr), ValidLft: lifetime(valid), PreferedLft: lifetime(preferred)}
	if err := netlink.AddrReplace(l, a); err != nil {
		return fmt.Errorf("%w: %s address %v: %v", ErrLink, name, addr, err)
	}
	return nil
}

// DelAddr implements LinkManager.
func (n Netlink) DelAddr(name string, addr netip.Prefix) error {
	l, err := n.link(name)
	if err != nil {
		return err
	}
	if err := netlink.AddrDel(l, &netlink.Addr{IPNet: prefixToIPNet(addr)}); err != nil {
		return fmt.Errorf("%w: %s delete %v: %v", ErrLink, name, addr, err)
	}
	return nil
}

// ReplaceDefaultRoute implements LinkManager. The route is on-link so a
// router outside the leased subnet still works.
func (n Netlink) ReplaceDefaultRoute(name string, gw netip.Addr) error {
	r, err := n.defaultRoute(name, gw)
	if err != nil {
		return err
	}
	if err := netlink.RouteReplace(r); err != nil {
		return fmt.Errorf("%w: %s default route via %v: %v", ErrLink, name, gw, err)
	}
	return nil
}

// DelDefaultRoute implements LinkManager.
func (n Netlink) DelDefaultRoute(name string, gw netip.Addr) error {
	r, err := n.defaultRoute(name, gw)
	if err != nil {
		return err
	}
	if err := netlink.RouteDel(r); err != nil {
		return fmt.Errorf("%w: %s delete default route: %v", ErrLink, name, err)
	}
	return nil
}

func (n Netlink) defaultRoute(name string, gw netip.Addr) (*netlink.Route, error) {
	l, err := n.link(name)
	if err != nil {
		return nil, err
	}
	return &netlink.Route{
		LinkIndex: l.Attrs().Index,
		Dst:       &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
		Gw:        net.IP(gw.AsSlice()),
		Flags:     int(netlink.FLAG_ONLINK),
	}, nil
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// lifetime converts to netlink seconds; 0 stays 0, which netlink treats as
// "forever", and any finite lifetime is at least one second.
func lifetime(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return max(int(d/time.Second), 1)
}
