package netup

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

// LoopbackUp brings up lo. Nothing else does in an initramfs, and the splash
// probes the service's health on 127.0.0.1.
func LoopbackUp() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("%w: lo: %v", ErrLink, err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("%w: lo up: %v", ErrLink, err)
	}
	return nil
}
