// Package netup owns network bring-up: physical links, DHCPv4 on every NIC,
// WiFi from a validated wifi.conf, and the choice of the primary network with
// the files that describe it (resolv.conf, primary-net).
//
// Contract (CONTRACTS §1.14): every physical NIC is brought up and asked for
// a DHCPv4 lease in parallel; the first lease that carries a router becomes
// primary and gets the default route, resolv.conf and <runDir>/primary-net.
// Leases without a router are applied but never promoted. Leases are renewed
// for as long as the context lives; a lost primary removes primary-net and
// the next held lease with a router, if any, is promoted.
//
// Everything that touches the kernel sits behind LinkManager (netlink) and
// Client (DHCP) so the logic runs over fakes without root; sysfs is read
// below an injectable root. Values from a DHCP server are outside input:
// they are validated before they reach a file, and the writers re-check them
// so no option can add a line to resolv.conf or primary-net.
package netup
