package netup

import (
	"fmt"
	"net/netip"
	"strings"
)

const resolvHeader = "# written by inert from the primary DHCP lease"

// Resolver is what resolv.conf says: nameservers and search domains.
type Resolver struct {
	Nameservers []netip.Addr
	Search      []string
}

// FormatResolvConf renders resolv.conf: a comment, at most three
// `nameserver <IPv4>` lines and at most one `search` line. Invalid entries
// are dropped (not refused) so a lease with one bad option still resolves.
func FormatResolvConf(r Resolver) []byte {
	var b strings.Builder
	b.WriteString(resolvHeader + "\n")
	for _, ns := range sanitiseNameservers(r.Nameservers) {
		fmt.Fprintf(&b, "nameserver %s\n", ns)
	}
	if s := sanitiseSearch(r.Search); len(s) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(s, " "))
	}
	return []byte(b.String())
}

// ParseResolvConf reads the nameserver and search lines of a resolv.conf;
// comments and other options are ignored, unparsable nameservers refused.
func ParseResolvConf(b []byte) (Resolver, error) {
	var r Resolver
	for line := range strings.SplitSeq(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") || strings.HasPrefix(fields[0], ";") {
			continue
		}
		switch fields[0] {
		case "nameserver":
			if len(fields) != 2 {
				return Resolver{}, fmt.Errorf("%w: nameserver line %q", ErrParse, line)
			}
			a, err := netip.ParseAddr(fields[1])
			if err != nil {
				return Resolver{}, fmt.Errorf("%w: nameserver: %v", ErrParse, err)
			}
			r.Nameservers = append(r.Nameservers, a)
		case "search":
			// The last search line wins, as in the resolver.
			r.Search = append([]string(nil), fields[1:]...)
		}
	}
	return r, nil
}

// WriteResolvConf replaces path atomically, readable by everyone.
func WriteResolvConf(path string, r Resolver) error {
	return writeAtomic(path, FormatResolvConf(r), 0o644)
}
