package appliance

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"inert/appliance/profiles"
	"inert/boot"
	"inert/netup"
)

func networkWorker(t *testing.T) (*Worker, *[]Event) {
	t.Helper()
	b, err := profiles.Manifest("demo")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	var evs []Event
	w := NewWorker(m, boot.Env{}, t.TempDir(), func(e Event) { evs = append(evs, e) })
	return w, &evs
}

func sampleNetworkEvidence() netup.NetworkEvidence {
	return netup.NetworkEvidence{
		Interfaces: []netup.InterfaceEvidence{
			{Name: "eth0", State: "no-carrier", Detail: "eth0: no cable."},
			{Name: "wlan0", Wireless: true, State: "leased", Carrier: true, Address: "192.168.77.50/24", Router: "192.168.77.1"},
		},
		Primary: &netup.Primary{Iface: "wlan0", IP: netip.MustParseAddr("192.168.77.50"),
			Gateway: netip.MustParseAddr("192.168.77.1"), DNS: []netip.Addr{netip.MustParseAddr("192.168.77.1")}},
		Wifi: &netup.WifiEvidence{Iface: "wlan0", SSID: "lab", BSSID: "02:00:00:00:01:00", Associated: true, State: "connected"},
	}
}

// The evidence file is public (0644), replaced whole, and decodes back to
// what was written.
func TestWriteNetworkEvidence(t *testing.T) {
	w, evs := networkWorker(t)
	dir := w.path(w.M.RunDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, NetworkFile)
	if err := os.WriteFile(path, []byte("old contents, longer than the new ones would be if appended"), 0o600); err != nil {
		t.Fatal(err)
	}
	want := sampleNetworkEvidence()
	w.writeNetworkEvidence(want)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("%s mode %v, want 0644", NetworkFile, st.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	var got netup.NetworkEvidence
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s does not decode: %v\n%s", NetworkFile, err, b)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s decodes to %+v, want %+v", NetworkFile, got, want)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	if len(*evs) != 0 {
		t.Errorf("events on success: %+v", *evs)
	}
}

// A run directory that cannot be written is reported, not fatal.
func TestWriteNetworkEvidenceUnwritable(t *testing.T) {
	w, evs := networkWorker(t)
	// The run directory's parent is a file: nothing can be created there.
	if err := os.WriteFile(w.path(filepath.Dir(w.M.RunDir)), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	w.writeNetworkEvidence(sampleNetworkEvidence())
	if len(*evs) != 1 || (*evs)[0].Step != "network" || !strings.Contains((*evs)[0].Message, "network evidence not written") {
		t.Errorf("events %+v, want one network line saying the evidence was not written", *evs)
	}
}
