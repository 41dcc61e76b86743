package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// wiphyIndex reads the wiphy index of a wireless interface from sysfs.
func wiphyIndex(iface string) (uint32, error) {
	b, err := os.ReadFile("/sys/class/net/" + iface + "/phy80211/index")
	if err != nil {
		return 0, fmt.Errorf("wiphy of %s: %w", iface, err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("wiphy of %s: %w", iface, err)
	}
	return uint32(n), nil
}

// moveWiphy moves a wiphy, with its interfaces, into the network namespace
// of process pid: `iw phy phyN set netns PID` over nl80211.
func moveWiphy(phy uint32, pid int) error {
	c, err := genetlink.Dial(nil)
	if err != nil {
		return fmt.Errorf("generic netlink: %w", err)
	}
	defer c.Close()
	fam, err := c.GetFamily("nl80211")
	if err != nil {
		return fmt.Errorf("nl80211 family: %w", err)
	}
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(unix.NL80211_ATTR_WIPHY, phy)
	ae.Uint32(unix.NL80211_ATTR_PID, uint32(pid))
	data, err := ae.Encode()
	if err != nil {
		return err
	}
	msg := genetlink.Message{
		Header: genetlink.Header{Command: unix.NL80211_CMD_SET_WIPHY_NETNS, Version: fam.Version},
		Data:   data,
	}
	if _, err := c.Execute(msg, fam.ID, netlink.Request|netlink.Acknowledge); err != nil {
		return fmt.Errorf("move phy%d into the namespace of pid %d: %w", phy, pid, err)
	}
	return nil
}
