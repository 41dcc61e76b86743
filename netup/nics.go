package netup

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// NIC is a physical network interface found in sysfs.
type NIC struct {
	Name     string `json:"name"`
	Wireless bool   `json:"wireless"`
}

// FindNICs lists the physical interfaces under sysRoot (the sysfs mount,
// "/sys" in production): entries of class/net with a `device` link. lo and
// virtual interfaces have none. Wireless ones (wl* or with phy80211) are
// listed only when withWifi is set. Names that are not plain kernel names
// are skipped, since they end up in files and status lines.
func FindNICs(sysRoot string, withWifi bool) ([]NIC, error) {
	dir := filepath.Join(sysRoot, "class", "net")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoSysfs, err)
	}
	var nics []NIC
	for _, e := range entries {
		nic, ok := physicalNIC(sysRoot, e.Name())
		if !ok || (nic.Wireless && !withWifi) {
			continue
		}
		nics = append(nics, nic)
	}
	sort.Slice(nics, func(i, j int) bool { return nics[i].Name < nics[j].Name })
	return nics, nil
}

// physicalNIC classifies one sysfs interface entry.
func physicalNIC(sysRoot, name string) (NIC, bool) {
	if name == "lo" || !validIfaceName(name) {
		return NIC{}, false
	}
	base := filepath.Join(sysRoot, "class", "net", name)
	if _, err := os.Lstat(filepath.Join(base, "device")); err != nil {
		return NIC{}, false
	}
	wireless := strings.HasPrefix(name, "wl")
	if _, err := os.Lstat(filepath.Join(base, "phy80211")); err == nil {
		wireless = true
	}
	return NIC{Name: name, Wireless: wireless}, true
}
