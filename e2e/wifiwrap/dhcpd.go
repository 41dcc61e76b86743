package main

import (
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"inert/e2e/wifiwrap/apconf"
)

// dhcpServer leases one address to whoever asks: the access point serves
// exactly one client, inert's wlan0.
type dhcpServer struct {
	cfg *apconf.Config
}

func newDHCPServer(cfg *apconf.Config) *dhcpServer { return &dhcpServer{cfg: cfg} }

// handle answers one request on conn.
func (d *dhcpServer) handle(conn net.PacketConn, peer net.Addr, req *dhcpv4.DHCPv4) {
	resp := d.reply(req)
	if resp == nil {
		return
	}
	if _, err := conn.WriteTo(resp.ToBytes(), peer); err != nil {
		logf("wifiwrap: DHCP reply to %v: %v", peer, err)
	}
}

// reply is the answer to req: OFFER for DISCOVER, ACK for a REQUEST of the
// leased address, NAK for a REQUEST of any other, nothing otherwise.
func (d *dhcpServer) reply(req *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	if req.OpCode != dhcpv4.OpcodeBootRequest {
		return nil
	}
	server := net.IP(d.cfg.APAddr.Addr().AsSlice())
	var kind dhcpv4.MessageType
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		kind = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		kind = dhcpv4.MessageTypeAck
		if !d.requestsLease(req) {
			kind = dhcpv4.MessageTypeNak
		}
	default:
		return nil
	}
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(kind),
		dhcpv4.WithServerIP(server),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(server)),
	}
	if kind != dhcpv4.MessageTypeNak {
		mods = append(mods,
			dhcpv4.WithYourIP(net.IP(d.cfg.ClientAddr.AsSlice())),
			dhcpv4.WithNetmask(net.CIDRMask(d.cfg.APAddr.Bits(), 32)),
			dhcpv4.WithRouter(server),
			dhcpv4.WithDNS(server),
			dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(time.Duration(d.cfg.LeaseSeconds)*time.Second)),
		)
	}
	resp, err := dhcpv4.NewReplyFromRequest(req, mods...)
	if err != nil {
		return nil
	}
	return resp
}

// requestsLease reports whether a REQUEST asks for the one address: in the
// requested-address option (SELECTING, INIT-REBOOT) or as ciaddr (RENEWING).
func (d *dhcpServer) requestsLease(req *dhcpv4.DHCPv4) bool {
	want := req.RequestedIPAddress()
	if want == nil || want.IsUnspecified() {
		want = req.ClientIPAddr
	}
	a, ok := netip.AddrFromSlice(want.To4())
	return ok && a == d.cfg.ClientAddr
}
