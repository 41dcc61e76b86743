package netup

import (
	"sort"
	"time"
)

// Link states as evidence and tests name them.
const (
	stateStarting    = "starting"
	stateFailed      = "failed"
	stateNoCarrier   = "no-carrier"
	stateDHCP        = "dhcp"
	stateNoLease     = "no-lease"
	stateLeased      = "leased"
	stateAssociating = "associating"
	stateNoWifi      = "no-wifi"
)

// linkState is what netup knows about one link, guarded by Net.mu.
type linkState struct {
	NIC    NIC
	State  string
	Detail string // last status line about the link
	Lease  *Lease
}

func (n *Net) linkLocked(name string) *linkState {
	st, ok := n.links[name]
	if !ok {
		st = &linkState{NIC: NIC{Name: name}, State: stateStarting}
		n.links[name] = st
	}
	return st
}

// NetworkEvidence is the `network` section of evidence.json.
type NetworkEvidence struct {
	Interfaces []InterfaceEvidence `json:"interfaces"`
	Primary    *Primary            `json:"primary"`
	Wifi       *WifiEvidence       `json:"wifi,omitempty"`
}

// InterfaceEvidence describes one physical link.
type InterfaceEvidence struct {
	Name     string `json:"name"`
	Wireless bool   `json:"wireless"`
	State    string `json:"state"`
	Carrier  bool   `json:"carrier"`
	Detail   string `json:"detail,omitempty"`
	// Address is the leased address in CIDR form, Router its router.
	Address string `json:"address,omitempty"`
	Router  string `json:"router,omitempty"`
	// LeaseExpires is RFC 3339 UTC, empty for none or an infinite lease.
	LeaseExpires string `json:"lease_expires,omitempty"`
}

// WifiEvidence is the WiFi association as last seen. It holds the SSID,
// which is shown on screen anyway, and never the PSK.
type WifiEvidence struct {
	Iface      string `json:"iface"`
	SSID       string `json:"ssid"`
	BSSID      string `json:"bssid,omitempty"`
	Associated bool   `json:"associated"`
	State      string `json:"state"`
}

// Snapshot returns the current network evidence; it is safe to call at any
// time, from any goroutine, including from the report callback.
func (n *Net) Snapshot() NetworkEvidence {
	n.mu.Lock()
	defer n.mu.Unlock()
	ev := NetworkEvidence{Interfaces: []InterfaceEvidence{}}
	for _, st := range n.links {
		ie := InterfaceEvidence{Name: st.NIC.Name, Wireless: st.NIC.Wireless, State: st.State, Detail: st.Detail}
		if n.hub != nil {
			ie.Carrier = n.hub.current(st.NIC.Name)
		}
		if l := st.Lease; l != nil {
			ie.Address = l.Addr.String()
			if l.HasRouter() {
				ie.Router = l.Router.String()
			}
			if !l.Infinite {
				ie.LeaseExpires = l.Expires().UTC().Format(time.RFC3339)
			}
		}
		ev.Interfaces = append(ev.Interfaces, ie)
	}
	sort.Slice(ev.Interfaces, func(i, j int) bool { return ev.Interfaces[i].Name < ev.Interfaces[j].Name })
	if n.applied != nil {
		p := primaryFromLease(*n.applied)
		ev.Primary = &p
	}
	if w := n.wifi.evidence(); w != nil {
		ev.Wifi = w
	}
	return ev
}
