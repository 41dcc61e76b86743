package netup

import (
	"fmt"
	"time"
)

// Status words, as the splash shows them (CONTRACTS §4).
const (
	WordDHCP = "DHCP"
	WordWifi = "WIFI"
)

// Status is one report for a person: the splash word, the status line, and
// the primary network whenever it changed (nil after it was lost).
type Status struct {
	// Word is WordDHCP, WordWifi or "" when the state word should not change.
	Word string
	// Line is the human status line; it never contains a secret.
	Line string
	// Primary is set on reports that change or confirm the primary network;
	// PrimaryLost is set when the primary went away and none replaced it.
	Primary     *Primary
	PrimaryLost bool
	// Elapsed is, on the report that first promotes a primary, the time from
	// that link coming up to the lease: the bring-up benchmark figure.
	Elapsed time.Duration
	// Secondary marks lines about a link other than the primary while a
	// primary exists: callers log them but keep the status line.
	Secondary bool
}

// Status lines. They are values so tests and the splash agree on them.
func lineNoNIC() string                  { return "No network interface found." }
func lineNoCable(iface string) string    { return iface + ": no cable." }
func lineAsking(iface string) string     { return iface + ": asking for an address (DHCP)." }
func lineNoAnswer(iface string) string   { return iface + ": no DHCP answer." }
func lineRefused(iface string) string    { return iface + ": DHCP server refused the request." }
func lineBadLease(iface string) string   { return iface + ": DHCP answer unusable." }
func lineLinkFailed(iface string) string { return iface + ": cannot configure the link." }
func linePrimary(p Primary) string       { return fmt.Sprintf("Network: %s on %s.", p.IP, p.Iface) }
func lineNoRouter(l Lease) string {
	return fmt.Sprintf("%s: %s has no router; not used as the main network.", l.Iface, l.Addr.Addr())
}
func lineSecondary(l Lease) string {
	return fmt.Sprintf("%s: %s leased; not the main network.", l.Iface, l.Addr.Addr())
}
func lineLost(iface string) string { return iface + ": address lost; asking again." }
func lineNoPrimary() string        { return "Network lost; the service keeps running locally." }
func lineStalePrimary() string     { return "Network lost; primary-net could not be removed." }
