package main

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"inert/e2e/wifiwrap/apconf"
)

func testServer() *dhcpServer {
	return newDHCPServer(&apconf.Config{SSID: "lab", PMK: strings.Repeat("ab", 32), Channel: 6,
		APAddr: netip.MustParsePrefix("192.168.77.1/24"), ClientAddr: netip.MustParseAddr("192.168.77.50"), LeaseSeconds: 600})
}

func request(t *testing.T, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	mac, _ := net.ParseMAC("02:00:00:00:00:00")
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(mac)}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Each answer is decoded from its wire bytes, as the client would see it.
func TestDHCPReplies(t *testing.T) {
	lease := net.IPv4(192, 168, 77, 50)
	other := net.IPv4(192, 168, 77, 99)
	for name, tc := range map[string]struct {
		req  []dhcpv4.Modifier
		want dhcpv4.MessageType // MessageTypeNone: no answer
	}{
		"discover":          {[]dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover)}, dhcpv4.MessageTypeOffer},
		"request the lease": {[]dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(lease))}, dhcpv4.MessageTypeAck},
		"renew by ciaddr":   {[]dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithClientIP(lease)}, dhcpv4.MessageTypeAck},
		"request another":   {[]dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(other))}, dhcpv4.MessageTypeNak},
		"request nothing":   {[]dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest)}, dhcpv4.MessageTypeNak},
		"release":           {[]dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease), dhcpv4.WithClientIP(lease)}, dhcpv4.MessageTypeNone},
		"a reply, not a request": {[]dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeDiscover),
			func(d *dhcpv4.DHCPv4) { d.OpCode = dhcpv4.OpcodeBootReply }}, dhcpv4.MessageTypeNone},
	} {
		t.Run(name, func(t *testing.T) {
			req := request(t, tc.req...)
			resp := testServer().reply(req)
			if tc.want == dhcpv4.MessageTypeNone {
				if resp != nil {
					t.Fatalf("answered %v", resp.MessageType())
				}
				return
			}
			if resp == nil {
				t.Fatalf("no answer, want %v", tc.want)
			}
			got, err := dhcpv4.FromBytes(resp.ToBytes())
			if err != nil {
				t.Fatal(err)
			}
			if got.MessageType() != tc.want || got.TransactionID != req.TransactionID || got.OpCode != dhcpv4.OpcodeBootReply {
				t.Fatalf("answer %v xid %v op %v, want %v xid %v", got.MessageType(), got.TransactionID, got.OpCode, tc.want, req.TransactionID)
			}
			if !got.ServerIdentifier().Equal(net.IPv4(192, 168, 77, 1)) {
				t.Errorf("server id %v", got.ServerIdentifier())
			}
			if tc.want == dhcpv4.MessageTypeNak {
				if !got.YourIPAddr.IsUnspecified() {
					t.Errorf("NAK offers %v", got.YourIPAddr)
				}
				return
			}
			if !got.YourIPAddr.Equal(lease) {
				t.Errorf("yiaddr %v, want %v", got.YourIPAddr, lease)
			}
			if r := got.Router(); len(r) != 1 || !r[0].Equal(net.IPv4(192, 168, 77, 1)) {
				t.Errorf("router %v", r)
			}
			if d := got.DNS(); len(d) != 1 || !d[0].Equal(net.IPv4(192, 168, 77, 1)) {
				t.Errorf("dns %v", d)
			}
			if ones, _ := got.SubnetMask().Size(); ones != 24 {
				t.Errorf("mask /%d", ones)
			}
			if lt := got.IPAddressLeaseTime(0); lt != 600*time.Second {
				t.Errorf("lease time %v", lt)
			}
		})
	}
}

// Whatever arrives on port 67, the server answers with a well-formed reply
// to that transaction or not at all.
func FuzzDHCPReply(f *testing.F) {
	for _, kind := range []dhcpv4.MessageType{dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeInform} {
		m, _ := dhcpv4.New(dhcpv4.WithMessageType(kind), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 168, 77, 50))))
		f.Add(m.ToBytes())
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		req, err := dhcpv4.FromBytes(in)
		if err != nil {
			return
		}
		resp := testServer().reply(req)
		if resp == nil {
			return
		}
		back, err := dhcpv4.FromBytes(resp.ToBytes())
		if err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
		if back.TransactionID != req.TransactionID || back.OpCode != dhcpv4.OpcodeBootReply {
			t.Fatalf("reply xid %v op %v for request xid %v", back.TransactionID, back.OpCode, req.TransactionID)
		}
	})
}
