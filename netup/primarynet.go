package netup

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// PrimaryNetFile is the name of the primary-network file in the run dir.
const PrimaryNetFile = "primary-net"

// Primary is the network that carries the default route.
type Primary struct {
	Iface   string       `json:"iface"`
	IP      netip.Addr   `json:"ip"`
	Gateway netip.Addr   `json:"gw"`
	DNS     []netip.Addr `json:"dns"`
}

func primaryFromLease(l Lease) Primary {
	return Primary{Iface: l.Iface, IP: l.Addr.Addr(), Gateway: l.Router, DNS: append([]netip.Addr(nil), l.DNS...)}
}

func (p Primary) validate() error {
	if !validIfaceName(p.Iface) {
		return fmt.Errorf("%w: interface name %q", ErrBadValue, p.Iface)
	}
	if !validHostIPv4(p.IP) {
		return fmt.Errorf("%w: address %v", ErrBadValue, p.IP)
	}
	if !validHostIPv4(p.Gateway) {
		return fmt.Errorf("%w: gateway %v", ErrBadValue, p.Gateway)
	}
	if len(p.DNS) > maxNameservers {
		return fmt.Errorf("%w: %d nameservers", ErrBadValue, len(p.DNS))
	}
	for _, d := range p.DNS {
		if !validHostIPv4(d) {
			return fmt.Errorf("%w: nameserver %v", ErrBadValue, d)
		}
	}
	return nil
}

// FormatPrimaryNet renders the primary-net file: exactly four lines,
//
//	iface=<name>
//	ip=<dotted IPv4>
//	gw=<dotted IPv4>
//	dns=<IPv4>[,<IPv4>[,<IPv4>]]
//
// dns is comma-separated with no spaces (empty when the lease named none),
// so a shell reads it with IFS=, and no value can contain a separator. Every
// value is re-validated here, whatever the caller checked before.
func FormatPrimaryNet(p Primary) ([]byte, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	dns := make([]string, len(p.DNS))
	for i, d := range p.DNS {
		dns[i] = d.String()
	}
	return fmt.Appendf(nil, "iface=%s\nip=%s\ngw=%s\ndns=%s\n",
		p.Iface, p.IP, p.Gateway, strings.Join(dns, ",")), nil
}

// ParsePrimaryNet reads a file written by FormatPrimaryNet and validates it.
func ParsePrimaryNet(b []byte) (Primary, error) {
	lines := strings.Split(string(b), "\n")
	if len(lines) != 5 || lines[4] != "" {
		return Primary{}, fmt.Errorf("%w: primary-net needs exactly four lines", ErrParse)
	}
	var p Primary
	keys := []string{"iface", "ip", "gw", "dns"}
	for i, key := range keys {
		v, ok := strings.CutPrefix(lines[i], key+"=")
		if !ok {
			return Primary{}, fmt.Errorf("%w: primary-net line %d is not %s=", ErrParse, i+1, key)
		}
		var err error
		switch key {
		case "iface":
			p.Iface = v
		case "ip":
			p.IP, err = netip.ParseAddr(v)
		case "gw":
			p.Gateway, err = netip.ParseAddr(v)
		case "dns":
			if v == "" {
				break
			}
			for s := range strings.SplitSeq(v, ",") {
				a, perr := netip.ParseAddr(s)
				if perr != nil {
					err = perr
					break
				}
				p.DNS = append(p.DNS, a)
			}
		}
		if err != nil {
			return Primary{}, fmt.Errorf("%w: primary-net %s: %v", ErrParse, key, err)
		}
	}
	if err := p.validate(); err != nil {
		return Primary{}, fmt.Errorf("%w: %w", ErrParse, err)
	}
	return p, nil
}

// WritePrimaryNet replaces <runDir>/primary-net atomically (0644: it is no
// secret and the service may read it as another user).
func WritePrimaryNet(runDir string, p Primary) error {
	b, err := FormatPrimaryNet(p)
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(runDir, PrimaryNetFile), b, 0o644)
}

// RemovePrimaryNet deletes primary-net; a missing file is not an error.
func RemovePrimaryNet(runDir string) error {
	err := os.Remove(filepath.Join(runDir, PrimaryNetFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("netup: remove primary-net: %w", err)
	}
	return nil
}

// writeAtomic writes b to a temporary file beside path and renames it over
// path, so readers see the old or the new content, never a mix.
func writeAtomic(path string, b []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("netup: write %s: %w", path, err)
	}
	tmp := f.Name()
	_, werr := f.Write(b)
	if werr == nil {
		werr = f.Chmod(mode)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("netup: write %s: %w", path, werr)
	}
	return nil
}

// countLines is used by tests and fuzzers to bound output size.
func countLines(b []byte) int { return bytes.Count(b, []byte("\n")) }
