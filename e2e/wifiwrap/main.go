// Command wifiwrap is a TEST-ONLY init for inert's WiFi end-to-end tests; it
// never goes into a production image (only e2e/wifi_test.go puts it into an
// initramfs, as an extra cpio the UKI starts with rdinit=/wifiwrap).
//
// As PID 1 it builds a small radio world and then becomes inert:
//   - mounts proc, sysfs and devtmpfs, and loads mac80211_hwsim with two
//     radios (wlan0 and wlan1 on one simulated medium);
//   - starts itself as the "ap" role in a new network and mount namespace,
//     moves wlan1's wiphy there (nl80211 SET_WIPHY_NETNS), and waits until
//     that child runs hostapd (WPA2-PSK) and a one-address DHCP server;
//   - starts itself as the "dump" role, which serves a tar of /run, /tmp and
//     every process's command line and environment on a virtio-serial port
//     when the host asks, so the test can look for the PSK in the guest;
//   - unmounts what it mounted and execs /init, which stays PID 1.
//
// Its console lines start with "wifiwrap:"; it never prints a passphrase
// (it only ever holds the derived key, which it never prints either).
package main

import (
	"fmt"
	"os"
)

const (
	roleAP   = "ap"
	roleDump = "dump"
)

func main() {
	var err error
	switch {
	case os.Getpid() == 1:
		err = runInit() // returns only on failure to exec inert
	case len(os.Args) > 1 && os.Args[1] == roleAP:
		err = runAP()
	case len(os.Args) > 1 && os.Args[1] == roleDump:
		err = runDump()
	default:
		err = fmt.Errorf("usage: wifiwrap as PID 1, or wifiwrap %s|%s", roleAP, roleDump)
	}
	if err != nil {
		logf("%s%v", failedPrefix, err)
		if os.Getpid() == 1 {
			select {} // PID 1 must not exit; the test sees the failure line
		}
		os.Exit(1)
	}
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
}
