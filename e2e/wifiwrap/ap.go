package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"inert/e2e/wifiwrap/apconf"
)

const (
	hostapdBin  = "/usr/sbin/hostapd"
	apPrivate   = "/run" // a tmpfs of this mount namespace only
	hostapdConf = apPrivate + "/hostapd.conf"
	// apEnabled is hostapd's line once the BSS beacons.
	apEnabled = "AP-ENABLED"
)

// runAP is the access point, in its own network and mount namespaces: it
// waits for the wiphy (fd 3 says it was moved), starts hostapd and the
// DHCP server, says "ready <bssid>" on fd 4, then lives as long as hostapd.
func runAP() error {
	goR, ready := os.NewFile(3, "go"), os.NewFile(4, "ready")
	// Mounts made here must not leak to inert, nor inert's into here.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return apFail(ready, fmt.Errorf("make / private: %w", err))
	}
	_ = goR.SetReadDeadline(time.Now().Add(apReadyWait))
	if _, err := bufio.NewReader(goR).ReadString('\n'); err != nil {
		return apFail(ready, fmt.Errorf("waiting for the wiphy: %w", err))
	}
	goR.Close()
	// A sysfs mounted in this namespace shows this namespace's interfaces,
	// which hostapd looks up.
	_ = unix.Unmount("/sys", unix.MNT_DETACH)
	if err := unix.Mount("sysfs", "/sys", "sysfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return apFail(ready, fmt.Errorf("mount sysfs: %w", err))
	}
	if err := unix.Mount("tmpfs", apPrivate, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0700,size=1m"); err != nil {
		return apFail(ready, fmt.Errorf("mount %s: %w", apPrivate, err))
	}
	f, err := os.Open(apconf.Path)
	if err != nil {
		return apFail(ready, err)
	}
	cfg, err := apconf.Parse(f)
	f.Close()
	if err != nil {
		return apFail(ready, err)
	}
	bssid, err := configureLinks(cfg)
	if err != nil {
		return apFail(ready, err)
	}
	if err := os.WriteFile(hostapdConf, cfg.Hostapd(apIface), 0o600); err != nil {
		return apFail(ready, err)
	}
	cmd := exec.Command(hostapdBin, hostapdConf)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin"}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return apFail(ready, err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return apFail(ready, fmt.Errorf("start hostapd: %w", err))
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	deadline := time.After(apReadyWait)
	for enabled := false; !enabled; {
		select {
		case line, ok := <-lines:
			if !ok {
				return apFail(ready, fmt.Errorf("hostapd exited before %s: %v", apEnabled, cmd.Wait()))
			}
			logf("wifiwrap: hostapd: %s", line)
			enabled = strings.Contains(line, apEnabled)
		case <-deadline:
			return apFail(ready, fmt.Errorf("hostapd did not report %s within %s", apEnabled, apReadyWait))
		}
	}
	srv, err := server4.NewServer(apIface, nil, newDHCPServer(cfg).handle)
	if err != nil {
		return apFail(ready, fmt.Errorf("DHCP server: %w", err))
	}
	go func() {
		logf("wifiwrap: DHCP server stopped: %v", srv.Serve())
	}()
	fmt.Fprintf(ready, "ready %s\n", bssid)
	ready.Close()
	for line := range lines {
		logf("wifiwrap: hostapd: %s", line)
	}
	return fmt.Errorf("hostapd exited: %v", cmd.Wait())
}

// apFail tells the waiting parent why, and returns err.
func apFail(ready *os.File, err error) error {
	fmt.Fprintf(ready, "failed: %v\n", err)
	ready.Close()
	return err
}

// configureLinks brings lo up and gives the AP radio its address; hostapd
// brings the radio up itself. It returns the radio's MAC, the BSSID.
func configureLinks(cfg *apconf.Config) (string, error) {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return "", fmt.Errorf("lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return "", fmt.Errorf("lo up: %w", err)
	}
	link, err := netlink.LinkByName(apIface)
	if err != nil {
		return "", fmt.Errorf("%s in the access point namespace: %w", apIface, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{
		IP:   cfg.APAddr.Addr().AsSlice(),
		Mask: net.CIDRMask(cfg.APAddr.Bits(), 32),
	}}
	if err := netlink.AddrAdd(link, addr); err != nil && !errors.Is(err, unix.EEXIST) {
		return "", fmt.Errorf("address %v on %s: %w", cfg.APAddr, apIface, err)
	}
	return link.Attrs().HardwareAddr.String(), nil
}
