package netup

import (
	"net/netip"
	"strings"
)

// Limits on what inert writes from DHCP answers. resolv(5) reads at most
// three nameservers and six search domains of 256 characters in total.
const (
	maxNameservers   = 3
	maxSearchDomains = 6
	maxSearchChars   = 256
	maxDomainChars   = 253
	maxLabelChars    = 63
	maxIfaceChars    = 15 // IFNAMSIZ - 1
)

// validHostIPv4 accepts an IPv4 address that can name a host on a network:
// not unspecified, loopback, multicast or the limited broadcast address.
func validHostIPv4(a netip.Addr) bool {
	if !a.IsValid() || !a.Is4() {
		return false
	}
	return !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast() &&
		a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// validIfaceName accepts interface names made of [A-Za-z0-9_.-], which
// covers every kernel naming scheme and can never break a key=value line.
func validIfaceName(name string) bool {
	if name == "" || len(name) > maxIfaceChars || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// sanitiseDomain returns a DNS domain name in lower case with no trailing
// dot, or false when it is not a plain host name (letters, digits, '-' and
// '_' in labels of 1-63 characters, at most 253 characters).
func sanitiseDomain(s string) (string, bool) {
	s = strings.TrimSuffix(strings.ToLower(s), ".")
	if s == "" || len(s) > maxDomainChars {
		return "", false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > maxLabelChars || label[0] == '-' || label[len(label)-1] == '-' {
			return "", false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
	}
	return s, true
}

// sanitiseSearch keeps the valid, distinct domains of list in order, within
// resolv(5)'s limits on count and total length.
func sanitiseSearch(list []string) []string {
	var out []string
	total := len("search")
	seen := map[string]bool{}
	for _, d := range list {
		d, ok := sanitiseDomain(d)
		if !ok || seen[d] {
			continue
		}
		if len(out) == maxSearchDomains || total+1+len(d) > maxSearchChars {
			break
		}
		seen[d] = true
		total += 1 + len(d)
		out = append(out, d)
	}
	return out
}

// sanitiseNameservers keeps the valid, distinct IPv4 host addresses of list
// in order, at most three.
func sanitiseNameservers(list []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range list {
		if len(out) == maxNameservers {
			break
		}
		if !validHostIPv4(a) || containsAddr(out, a) {
			continue
		}
		out = append(out, a)
	}
	return out
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, b := range list {
		if a == b {
			return true
		}
	}
	return false
}
