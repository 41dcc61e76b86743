package netup

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestFindNICs(t *testing.T) {
	root := fakeSysfs(t, []string{"eth0", "enp1s0", "wlan0", "wlp2s0", "bad\nname"}, []string{"lo", "veth1", "br0"})
	// A wireless NIC with an unusual name is recognised by phy80211.
	phy := filepath.Join(root, "class", "net", "radio0")
	must(t, os.MkdirAll(phy, 0o755))
	must(t, os.Symlink(filepath.Join(root, "devices"), filepath.Join(phy, "device")))
	must(t, os.Symlink(filepath.Join(root, "devices"), filepath.Join(phy, "phy80211")))
	// lo with a device link is still never a NIC.
	must(t, os.Symlink(filepath.Join(root, "devices"), filepath.Join(root, "class", "net", "lo", "device")))

	names := func(nics []NIC) (out []string) {
		for _, n := range nics {
			out = append(out, n.Name)
		}
		return out
	}
	wired, err := FindNICs(root, false)
	must(t, err)
	if got, want := names(wired), []string{"enp1s0", "eth0"}; !slices.Equal(got, want) {
		t.Fatalf("without wifi: %q, want %q", got, want)
	}
	all, err := FindNICs(root, true)
	must(t, err)
	if got, want := names(all), []string{"enp1s0", "eth0", "radio0", "wlan0", "wlp2s0"}; !slices.Equal(got, want) {
		t.Fatalf("with wifi: %q, want %q", got, want)
	}
	for _, n := range all {
		if n.Wireless != (n.Name == "radio0" || n.Name[:2] == "wl") {
			t.Errorf("%s: wireless=%v", n.Name, n.Wireless)
		}
	}
	if _, err := FindNICs(filepath.Join(root, "missing"), false); !errors.Is(err, ErrNoSysfs) {
		t.Fatalf("missing sysfs: %v", err)
	}
}
