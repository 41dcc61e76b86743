package netup

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

// Bounds on lease times from a server. A lease shorter than minLease is
// stretched (a zero lifetime would mean "forever" to netlink and a tiny one
// would spin the renewal loop); infinite leases are never renewed.
const (
	minLease      = 10 * time.Second
	infiniteLease = time.Duration(0xffffffff) * time.Second
)

// Lease is a validated DHCPv4 lease: only fields inert uses, each checked.
type Lease struct {
	Iface string
	// Addr is the leased address with its subnet prefix.
	Addr netip.Prefix
	// Router is the first valid router, or the zero Addr when the lease
	// has none (such a lease is never promoted to primary).
	Router netip.Addr
	// DNS holds at most three valid IPv4 nameservers.
	DNS []netip.Addr
	// Search holds sanitised search domains (option 119, else option 15).
	Search []string
	// Server is the DHCP server identifier, when valid.
	Server netip.Addr
	// Acquired is when the lease (or its last renewal) was granted.
	Acquired time.Time
	// Duration is the lease time; Infinite is set for 0xffffffff.
	Duration time.Duration
	Infinite bool
	// T1 and T2 are the renewal and rebinding times, relative to Acquired.
	T1, T2 time.Duration

	// raw is the library's lease, needed to renew it.
	raw *nclient4.Lease
}

// HasRouter reports whether the lease may become primary.
func (l Lease) HasRouter() bool { return l.Router.IsValid() }

// Expires is when the lease ends if it is not renewed (zero when infinite).
func (l Lease) Expires() time.Time {
	if l.Infinite {
		return time.Time{}
	}
	return l.Acquired.Add(l.Duration)
}

// leaseFromACK validates a DHCP ACK into a Lease. Anything unusable in an
// optional field is dropped; an unusable address rejects the lease.
func leaseFromACK(iface string, ack *dhcpv4.DHCPv4, now time.Time) (Lease, error) {
	if ack == nil {
		return Lease{}, fmt.Errorf("%w: no answer", ErrBadLease)
	}
	ip, ok := addrFromIP(ack.YourIPAddr)
	if !ok || !validHostIPv4(ip) {
		return Lease{}, fmt.Errorf("%w: offered address %q is not a host address", ErrBadLease, ack.YourIPAddr.String())
	}
	bits := maskBits(ack.SubnetMask(), ack.YourIPAddr)
	l := Lease{Iface: iface, Addr: netip.PrefixFrom(ip, bits), Acquired: now}

	for _, r := range ack.Router() {
		if a, ok := addrFromIP(r); ok && validHostIPv4(a) && a != ip {
			l.Router = a
			break
		}
	}
	var dns []netip.Addr
	for _, d := range ack.DNS() {
		if a, ok := addrFromIP(d); ok {
			dns = append(dns, a)
		}
	}
	l.DNS = sanitiseNameservers(dns)
	if labels := ack.DomainSearch(); labels != nil && len(labels.Labels) > 0 {
		l.Search = sanitiseSearch(labels.Labels)
	} else if name := ack.DomainName(); name != "" {
		l.Search = sanitiseSearch([]string{name})
	}
	if s, ok := addrFromIP(ack.ServerIdentifier()); ok && validHostIPv4(s) {
		l.Server = s
	}
	l.setTimes(ack.IPAddressLeaseTime(0), ack.IPAddressRenewalTime(0), ack.IPAddressRebindingTime(0))
	return l, nil
}

// setTimes applies RFC 2131's defaults (T1 = lease/2, T2 = lease*7/8) when
// the server's times are absent or inconsistent.
func (l *Lease) setTimes(lease, t1, t2 time.Duration) {
	if lease >= infiniteLease {
		l.Infinite = true
		return
	}
	if lease == 0 {
		// A missing lease time in an ACK is a protocol error; one day is
		// what common servers use and renewal will correct it.
		lease = 24 * time.Hour
	}
	lease = max(lease, minLease)
	if t1 <= 0 || t1 >= lease {
		t1 = lease / 2
	}
	if t2 <= t1 || t2 >= lease {
		t2 = lease * 7 / 8
		if t2 <= t1 {
			t2 = t1
		}
	}
	l.Duration, l.T1, l.T2 = lease, t1, t2
}

func addrFromIP(ip net.IP) (netip.Addr, bool) {
	ip4 := ip.To4()
	if ip4 == nil {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte(ip4)), true
}

// maskBits returns the prefix length of a contiguous IPv4 mask; an absent
// or non-contiguous mask falls back to the address's classful mask.
func maskBits(m net.IPMask, ip net.IP) int {
	if len(m) == net.IPv4len {
		if ones, bits := m.Size(); bits == 32 && ones > 0 {
			return ones
		}
	}
	if d := ip.DefaultMask(); d != nil {
		ones, _ := d.Size()
		return ones
	}
	return 32
}
