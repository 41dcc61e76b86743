package netup

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/rfc1035label"
)

// ackWire builds an ACK, serialises it and parses it back with the
// library, so options reach leaseFromACK the way a server's bytes would.
func ackWire(t testing.TB, yiaddr net.IP, opts ...dhcpv4.Option) *dhcpv4.DHCPv4 {
	t.Helper()
	mods := []dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeAck), dhcpv4.WithYourIP(yiaddr)}
	for _, o := range opts {
		mods = append(mods, dhcpv4.WithOption(o))
	}
	d, err := dhcpv4.New(mods...)
	if err != nil {
		t.Fatal(err)
	}
	back, err := dhcpv4.FromBytes(d.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	return back
}

func TestLeaseFromACKQEMU(t *testing.T) {
	ack := ackWire(t, net.IPv4(10, 0, 2, 15),
		dhcpv4.OptSubnetMask(net.CIDRMask(24, 32)),
		dhcpv4.OptRouter(net.IPv4(10, 0, 2, 2)),
		dhcpv4.OptDNS(net.IPv4(10, 0, 2, 3)),
		dhcpv4.OptServerIdentifier(net.IPv4(10, 0, 2, 2)),
		dhcpv4.OptIPAddressLeaseTime(86400*time.Second))
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	l, err := leaseFromACK("eth0", ack, now)
	must(t, err)
	if l.Addr != netip.MustParsePrefix("10.0.2.15/24") || l.Router != netip.MustParseAddr("10.0.2.2") ||
		!slices.Equal(l.DNS, []netip.Addr{netip.MustParseAddr("10.0.2.3")}) || l.Duration != 86400*time.Second ||
		l.T1 != 43200*time.Second || !l.Acquired.Equal(now) || l.Server != netip.MustParseAddr("10.0.2.2") {
		t.Fatalf("lease %+v", l)
	}
}

func TestLeaseFromACKHostile(t *testing.T) {
	ok := func(t *testing.T, l Lease, err error) {
		t.Helper()
		must(t, err)
	}
	cases := []struct {
		name  string
		yi    net.IP
		opts  []dhcpv4.Option
		check func(t *testing.T, l Lease, err error)
	}{
		{"zero address", net.IPv4zero, nil, func(t *testing.T, _ Lease, err error) {
			if !errors.Is(err, ErrBadLease) {
				t.Fatalf("got %v", err)
			}
		}},
		{"multicast address", net.IPv4(239, 1, 1, 1), nil, func(t *testing.T, _ Lease, err error) {
			if !errors.Is(err, ErrBadLease) {
				t.Fatalf("got %v", err)
			}
		}},
		{"router is broadcast", net.IPv4(10, 0, 0, 5), []dhcpv4.Option{dhcpv4.OptRouter(net.IPv4bcast)}, func(t *testing.T, l Lease, err error) {
			ok(t, l, err)
			if l.HasRouter() {
				t.Fatalf("router %v accepted", l.Router)
			}
		}},
		{"router is own address", net.IPv4(10, 0, 0, 5), []dhcpv4.Option{dhcpv4.OptRouter(net.IPv4(10, 0, 0, 5), net.IPv4(10, 0, 0, 1))}, func(t *testing.T, l Lease, err error) {
			ok(t, l, err)
			if l.Router != netip.MustParseAddr("10.0.0.1") {
				t.Fatalf("router %v", l.Router)
			}
		}},
		{"odd-length dns option", net.IPv4(10, 0, 0, 5), []dhcpv4.Option{dhcpv4.OptGeneric(dhcpv4.OptionDomainNameServer, []byte{10, 0, 0, 1, 9})}, func(t *testing.T, l Lease, err error) {
			ok(t, l, err)
			if len(l.DNS) != 0 {
				t.Fatalf("dns %v from a malformed option", l.DNS)
			}
		}},
		{"injected domain name", net.IPv4(10, 0, 0, 5), []dhcpv4.Option{dhcpv4.OptDomainName("corp.example\nnameserver 6.6.6.6")}, func(t *testing.T, l Lease, err error) {
			ok(t, l, err)
			if len(l.Search) != 0 {
				t.Fatalf("search %q", l.Search)
			}
		}},
		{"search list wins over domain", net.IPv4(10, 0, 0, 5), []dhcpv4.Option{
			dhcpv4.OptDomainName("one.example"),
			dhcpv4.OptDomainSearch(&rfc1035label.Labels{Labels: []string{"Two.Example", "bad domain"}})}, func(t *testing.T, l Lease, err error) {
			ok(t, l, err)
			if !slices.Equal(l.Search, []string{"two.example"}) {
				t.Fatalf("search %q", l.Search)
			}
		}},
		{"bad mask", net.IPv4(10, 0, 0, 5), []dhcpv4.Option{dhcpv4.OptSubnetMask(net.IPv4Mask(255, 0, 255, 0))}, func(t *testing.T, l Lease, err error) {
			ok(t, l, err)
			if l.Addr.Bits() != 8 {
				t.Fatalf("non-contiguous mask gave /%d, want the class A default /8", l.Addr.Bits())
			}
		}},
		{"infinite lease", net.IPv4(10, 0, 0, 5), []dhcpv4.Option{dhcpv4.OptIPAddressLeaseTime(infiniteLease)}, func(t *testing.T, l Lease, err error) {
			ok(t, l, err)
			if !l.Infinite || !l.Expires().IsZero() {
				t.Fatalf("lease %+v", l)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := leaseFromACK("eth0", ackWire(t, tc.yi, tc.opts...), time.Now())
			tc.check(t, l, err)
		})
	}
}

// checkLeaseInvariants is what every lease must satisfy, whatever the
// server sent.
func checkLeaseInvariants(t testing.TB, l Lease) {
	t.Helper()
	if !validHostIPv4(l.Addr.Addr()) || l.Addr.Bits() < 1 || l.Addr.Bits() > 32 {
		t.Fatalf("address %v", l.Addr)
	}
	if l.HasRouter() && (!validHostIPv4(l.Router) || l.Router == l.Addr.Addr()) {
		t.Fatalf("router %v", l.Router)
	}
	if len(l.DNS) > maxNameservers {
		t.Fatalf("%d nameservers", len(l.DNS))
	}
	for _, d := range l.DNS {
		if !validHostIPv4(d) {
			t.Fatalf("nameserver %v", d)
		}
	}
	for _, s := range l.Search {
		if c, ok := sanitiseDomain(s); !ok || c != s || strings.ContainsAny(s, " \n\r\t") {
			t.Fatalf("search domain %q", s)
		}
	}
	if !l.Infinite && (l.Duration < minLease || l.T1 <= 0 || l.T1 > l.T2 || l.T2 >= l.Duration) {
		t.Fatalf("times %v/%v/%v", l.Duration, l.T1, l.T2)
	}
}

func FuzzLeaseFromACK(f *testing.F) {
	f.Add(ackWire(f, net.IPv4(10, 0, 2, 15), dhcpv4.OptRouter(net.IPv4(10, 0, 2, 2)), dhcpv4.OptDNS(net.IPv4(10, 0, 2, 3))).ToBytes())
	f.Add(ackWire(f, net.IPv4(192, 168, 1, 9), dhcpv4.OptDomainSearch(&rfc1035label.Labels{Labels: []string{"a.example"}}),
		dhcpv4.OptRenewTimeValue(time.Hour), dhcpv4.OptRebindingTimeValue(time.Minute)).ToBytes())
	f.Fuzz(func(t *testing.T, packet []byte) {
		ack, err := dhcpv4.FromBytes(packet)
		if err != nil {
			return
		}
		l, err := leaseFromACK("eth0", ack, time.Unix(0, 0))
		if err != nil {
			if !errors.Is(err, ErrBadLease) {
				t.Fatalf("error %v does not wrap ErrBadLease", err)
			}
			return
		}
		checkLeaseInvariants(t, l)
	})
}

// FuzzPrimaryNet drives hostile option values through the whole path to
// primary-net: the file always has exactly four lines of the grammar and
// parses back to the lease's validated fields.
func FuzzPrimaryNet(f *testing.F) {
	f.Add("eth0", []byte{10, 0, 2, 15}, []byte{10, 0, 2, 2}, []byte{10, 0, 2, 3})
	f.Add("eth0\nip=1.1.1.1", []byte{10, 0, 2, 15}, []byte{255, 255, 255, 255, 10, 0, 2, 2}, []byte{0, 0, 0, 0, 1, 1, 1, 1, 8, 8, 8, 8, 9, 9, 9, 9, 4, 4, 4, 4})
	f.Add("wlan0", []byte{192, 168, 1, 2}, []byte{}, []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, iface string, yiaddr, routers, dns []byte) {
		if len(yiaddr) != 4 {
			return
		}
		ack := ackWire(t, net.IP(yiaddr), dhcpv4.OptGeneric(dhcpv4.OptionRouter, routers),
			dhcpv4.OptGeneric(dhcpv4.OptionDomainNameServer, dns))
		l, err := leaseFromACK(iface, ack, time.Unix(0, 0))
		if err != nil {
			return
		}
		checkLeaseInvariants(t, l)
		p := primaryFromLease(l)
		b, err := FormatPrimaryNet(p)
		if !l.HasRouter() || !validIfaceName(iface) {
			if !errors.Is(err, ErrBadValue) {
				t.Fatalf("unusable primary accepted (router %v, iface %q): %v", l.Router, iface, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("valid primary refused: %v", err)
		}
		checkPrimaryNetGrammar(t, b)
		back, err := ParsePrimaryNet(b)
		if err != nil {
			t.Fatalf("own output does not parse: %v\n%q", err, b)
		}
		if back.Iface != iface || back.IP != l.Addr.Addr() || back.Gateway != l.Router || !slices.Equal(back.DNS, l.DNS) {
			t.Fatalf("round trip %+v != lease %+v", back, l)
		}
	})
}

// FuzzResolvConf drives hostile DNS options (and raw search strings) to
// resolv.conf: at most five lines of the grammar that parse back to the
// sanitised values.
func FuzzResolvConf(f *testing.F) {
	f.Add([]byte{10, 0, 2, 3}, "example.com", []byte{3, 'f', 'o', 'o', 0}, "raw.example")
	f.Add([]byte{0, 0, 0, 0, 127, 0, 0, 1}, "evil\nnameserver 6.6.6.6", []byte{0xc0, 0x00}, "x y")
	f.Fuzz(func(t *testing.T, dns []byte, domain string, search []byte, raw string) {
		opts := []dhcpv4.Option{dhcpv4.OptGeneric(dhcpv4.OptionDomainNameServer, dns),
			dhcpv4.OptGeneric(dhcpv4.OptionDomainName, []byte(domain))}
		if len(search) > 0 {
			opts = append(opts, dhcpv4.OptGeneric(dhcpv4.OptionDNSDomainSearchList, search))
		}
		l, err := leaseFromACK("eth0", ackWire(t, net.IPv4(10, 0, 0, 5), opts...), time.Unix(0, 0))
		if err != nil {
			t.Fatalf("a valid address was refused: %v", err)
		}
		checkLeaseInvariants(t, l)
		b := FormatResolvConf(Resolver{Nameservers: l.DNS, Search: l.Search})
		checkResolvGrammar(t, b)
		back, err := ParseResolvConf(b)
		if err != nil {
			t.Fatalf("own output does not parse: %v", err)
		}
		if !slices.Equal(back.Nameservers, l.DNS) || !slices.Equal(back.Search, l.Search) {
			t.Fatalf("round trip %+v != %v %q", back, l.DNS, l.Search)
		}
		// Raw, unsanitised strings handed straight to the writer.
		b = FormatResolvConf(Resolver{Search: []string{raw, domain}})
		checkResolvGrammar(t, b)
	})
}

func FuzzParsePrimaryNet(f *testing.F) {
	f.Add([]byte("iface=eth0\nip=10.0.2.15\ngw=10.0.2.2\ndns=10.0.2.3\n"))
	f.Add([]byte("iface=eth0\nip=10.0.2.15\ngw=10.0.2.2\ndns=\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePrimaryNet(b)
		if err != nil {
			if !errors.Is(err, ErrParse) {
				t.Fatalf("error %v does not wrap ErrParse", err)
			}
			return
		}
		out, err := FormatPrimaryNet(p)
		if err != nil || string(out) != string(b) {
			t.Fatalf("accepted %q but it formats as %q (%v)", b, out, err)
		}
	})
}
