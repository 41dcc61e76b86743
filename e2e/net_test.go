package e2e

import (
	"testing"
	"time"

	"inert/appliance"
	"inert/netup"
	"inert/scripts/harness"
)

// Wired networks end to end (CONTRACTS §1.14): every NIC asks for a lease
// in parallel, a NIC without a DHCP server never holds up the others, and a
// cable plugged in after the boot still gets a lease.

// TestNetTwoNICs: the first NIC sits on a network with nothing on it (no
// DHCP server); the second, QEMU's user network, becomes primary.
func TestNetTwoNICs(t *testing.T) {
	t.Parallel()
	img, _ := stick{}.image(t)
	vm := boot(t, harness.Config{Image: img,
		ExtraNICs: []harness.NIC{{ID: "nodhcp", Backend: "hubport,hubid=1"}}})
	// ExtraNICs enumerate first: eth0 is the silent one.
	primary := awaitEvent(t, vm, bootLimit, "a primary network", func(e appliance.Event) bool {
		return e.Step == "network" && e.Data["iface"] != ""
	})
	if primary.Data["iface"] != "eth1" || primary.Data["ip"] != "10.0.2.15" || primary.Data["gw"] != "10.0.2.2" {
		t.Fatalf("primary network %v, want eth1 10.0.2.15 via 10.0.2.2", primary.Data)
	}
	awaitEvent(t, vm, 2*time.Minute, "the silent NIC's report", func(e appliance.Event) bool {
		return e.Step == "network" && e.Message == "eth0: no DHCP answer."
	})
	awaitHealthy(t, vm, bootLimit)
	ev := evidence(t, vm)
	if netw := field[map[string]string](t, ev, "network"); netw["iface"] != "eth1" || netw["ip"] != "10.0.2.15" {
		t.Errorf("primary-net %v, want eth1 10.0.2.15", netw)
	}
	detail := field[netup.NetworkEvidence](t, ev, "network_detail")
	if detail.Primary == nil || detail.Primary.Iface != "eth1" {
		t.Errorf("evidence primary %+v, want eth1", detail.Primary)
	}
	for _, ie := range detail.Interfaces {
		if ie.Name == "eth0" && (ie.Address != "" || !ie.Carrier || (ie.State != "no-lease" && ie.State != "dhcp")) {
			t.Errorf("the silent NIC's evidence %+v: want carrier, no address, no lease", ie)
		}
	}
	if len(detail.Interfaces) != 2 {
		t.Errorf("evidence lists %+v, want eth0 and eth1", detail.Interfaces)
	}
	reportBootTiming(t, vm)
}

// TestNetLinkDownAtBoot: the cable is out when the machine boots; the boot
// goes on and says so, and once the cable is in the link gets a lease and
// becomes primary.
func TestNetLinkDownAtBoot(t *testing.T) {
	t.Parallel()
	img, _ := stick{}.image(t)
	vm := boot(t, harness.Config{Image: img})
	// OVMF takes seconds before the kernel starts: the guest never sees
	// carrier until the test says so.
	setLink(t, vm, harness.UserNetID, false)
	awaitEvent(t, vm, bootLimit, "the no-cable report", func(e appliance.Event) bool {
		return e.Step == "network" && e.Message == "eth0: no cable."
	})
	awaitEvent(t, vm, bootLimit, "the service start", func(e appliance.Event) bool {
		return e.Step == "service" && e.State == appliance.StateStart
	})
	for _, e := range events(vm) {
		if e.Data["iface"] != "" {
			t.Fatalf("a primary network without a cable: %+v", e)
		}
	}
	setLink(t, vm, harness.UserNetID, true)
	primary := awaitEvent(t, vm, 2*time.Minute, "a lease after the cable came back", func(e appliance.Event) bool {
		return e.Step == "network" && e.Data["iface"] != ""
	})
	if primary.Data["iface"] != "eth0" || primary.Data["ip"] != "10.0.2.15" || primary.Data["gw"] != "10.0.2.2" {
		t.Fatalf("primary network %v, want eth0 10.0.2.15 via 10.0.2.2", primary.Data)
	}
	awaitHealthy(t, vm, bootLimit)
	detail := field[netup.NetworkEvidence](t, evidence(t, vm), "network_detail")
	assertInterfaces(t, detail, map[string]netup.InterfaceEvidence{
		"eth0": {Name: "eth0", State: "leased", Carrier: true, Address: "10.0.2.15/24", Router: "10.0.2.2"},
	})
}
