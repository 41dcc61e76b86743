package boot

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// usbTree builds /sys/bus/usb: two root hubs, a keyboard (HID only), a
// stick (mass storage), a combo device (HID + mass storage) and a hub.
func usbTree(t *testing.T, m *fakeMachine) (devDir, hidDrv string) {
	devDir = filepath.Join(m.sys, "bus", "usb", "devices")
	hidDrv = filepath.Join(m.sys, "bus", "usb", "drivers", "usbhid")
	for _, hub := range []string{"usb1", "usb2"} {
		mustWrite(t, filepath.Join(devDir, hub, "authorized_default"), "1\n")
		mustWrite(t, filepath.Join(devDir, hub, "authorized"), "1\n")
	}
	ifaces := map[string]string{"1-0:1.0": "09", "1-1:1.0": "03", "1-1:1.1": "03", "1-2:1.0": "08",
		"1-3:1.0": "03", "1-3:1.1": "08", "2-1:1.0": "09", "2-1.4:1.0": "03"}
	for dev := range map[string]bool{"1-1": true, "1-2": true, "1-3": true, "2-1": true, "2-1.4": true} {
		mustWrite(t, filepath.Join(devDir, dev, "authorized"), "1\n")
	}
	for iface, class := range ifaces {
		mustWrite(t, filepath.Join(devDir, iface, "bInterfaceClass"), class+"\n")
	}
	mustWrite(t, filepath.Join(hidDrv, "unbind"), "")
	mustWrite(t, filepath.Join(hidDrv, "bind"), "")
	mustWrite(t, filepath.Join(hidDrv, "uevent"), "")
	mustMkdir(t, filepath.Join(hidDrv, "1-1:1.0"))
	return devDir, hidDrv
}

func TestLockdownUSB(t *testing.T) {
	m := newFakeMachine(t)
	devDir, hidDrv := usbTree(t, m)
	rep, err := LockdownUSB(m.env(nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, hub := range []string{"usb1", "usb2"} {
		if got := readString(t, filepath.Join(devDir, hub, "authorized_default")); got != "0" {
			t.Errorf("%s authorized_default = %q", hub, got)
		}
	}
	if got := readString(t, filepath.Join(hidDrv, "unbind")); got != "1-1:1.0" {
		t.Errorf("unbind got %q", got)
	}
	for dev, want := range map[string]string{"1-1": "0", "1-2": "1\n", "1-3": "1\n", "2-1": "1\n", "2-1.4": "0", "usb1": "1\n"} {
		if got := readString(t, filepath.Join(devDir, dev, "authorized")); got != want {
			t.Errorf("%s authorized = %q, want %q", dev, got, want)
		}
	}
	if rep.RootHubs != 2 || rep.UnboundHID != 1 || rep.Deauthorized != 2 || !slices.Equal(rep.Devices, []string{"1-1", "2-1.4"}) {
		t.Errorf("report %+v", rep)
	}
}

func TestLockdownUSBIncomplete(t *testing.T) {
	m := newFakeMachine(t)
	devDir, _ := usbTree(t, m)
	// Fault: one root hub lacks authorized_default; the rest still happens.
	os.Remove(filepath.Join(devDir, "usb2", "authorized_default"))
	rep, err := LockdownUSB(m.env(nil, nil))
	if !errors.Is(err, ErrLockdownIncomplete) {
		t.Fatalf("err = %v", err)
	}
	if rep.RootHubs != 1 || rep.Deauthorized != 2 {
		t.Errorf("report %+v", rep)
	}
}

func TestLockdownUSBNoUSB(t *testing.T) {
	m := newFakeMachine(t)
	rep, err := LockdownUSB(m.env(nil, nil))
	if err != nil || rep.RootHubs+rep.UnboundHID+rep.Deauthorized != 0 {
		t.Fatalf("no USB: %+v, %v", rep, err)
	}
}
