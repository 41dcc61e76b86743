package demo

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"inert/netup"
)

// network_detail is the worker's network.json as written, null when it is
// absent or not JSON; `network` stays the primary-net map.
func TestNetworkDetail(t *testing.T) {
	written := netup.NetworkEvidence{
		Interfaces: []netup.InterfaceEvidence{{Name: "wlan0", Wireless: true, State: "leased", Carrier: true, Address: "192.168.77.50/24"}},
		Primary:    &netup.Primary{Iface: "wlan0", IP: netip.MustParseAddr("192.168.77.50"), Gateway: netip.MustParseAddr("192.168.77.1")},
		Wifi:       &netup.WifiEvidence{Iface: "wlan0", SSID: "lab", Associated: true, State: "connected"},
	}
	good, err := json.Marshal(written)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		file   []byte // nil: no network.json
		detail *netup.NetworkEvidence
	}{
		"absent":    {nil, nil},
		"written":   {good, &written},
		"truncated": {good[:len(good)/2], nil},
	} {
		t.Run(name, func(t *testing.T) {
			run := t.TempDir()
			if tc.file != nil {
				if err := os.WriteFile(filepath.Join(run, "network.json"), tc.file, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(run, "primary-net"), []byte("iface=wlan0\nip=192.168.77.50\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal((&Server{RunDir: run}).Collect())
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Network       map[string]string      `json:"network"`
				NetworkDetail *netup.NetworkEvidence `json:"network_detail"`
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.NetworkDetail, tc.detail) {
				t.Errorf("network_detail %+v, want %+v", got.NetworkDetail, tc.detail)
			}
			if got.Network["iface"] != "wlan0" || got.Network["ip"] != "192.168.77.50" {
				t.Errorf("network %v: primary-net not kept", got.Network)
			}
		})
	}
}
