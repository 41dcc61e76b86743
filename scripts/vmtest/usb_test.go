package vmtest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestParseHotplug(t *testing.T) {
	for _, c := range []struct {
		line string
		idx  int
		ok   bool
	}{
		{HotplugRequest + "0", 0, true},
		{"    " + HotplugRequest + "3  ", 3, true}, // go test's indentation
		{HotplugRequest + "-1", 0, false},
		{HotplugRequest + "x", 0, false},
		{HotplugRequest, 0, false},
		{"medium_vm_test.go:12: " + HotplugRequest + "0", 0, false}, // a log line quoting it
		{"=== RUN   TestVMBootMedium", 0, false},
	} {
		idx, ok := parseHotplug(c.line)
		if idx != c.idx || ok != c.ok {
			t.Errorf("parseHotplug(%q) = %d, %v; want %d, %v", c.line, idx, ok, c.idx, c.ok)
		}
	}
}

func FuzzParseHotplug(f *testing.F) {
	f.Add(HotplugRequest + "1")
	f.Add("junk")
	f.Fuzz(func(t *testing.T, line string) {
		idx, ok := parseHotplug(line)
		if !ok {
			return
		}
		if idx < 0 || !strings.HasPrefix(strings.TrimSpace(line), HotplugRequest) {
			t.Fatalf("parseHotplug(%q) = %d", line, idx)
		}
	})
}

func TestUSBArgs(t *testing.T) {
	if a := usbArgs(Options{}); a != nil {
		t.Fatalf("no sticks: %v", a)
	}
	// A controller is there for a later hot-plug even with no stick at boot.
	if a := usbArgs(Options{HotplugUSB: []string{"h.img"}}); !slices.Equal(a, []string{"-device", "qemu-xhci,id=" + xhciID}) {
		t.Fatalf("hot-plug only: %v", a)
	}
	a := strings.Join(usbArgs(Options{USBDisks: []string{"/a.img", "/b.img"}}), " ")
	for i, img := range []string{"/a.img", "/b.img"} {
		drive := fmt.Sprintf("id=usbdisk%d,file=%s", i, img)
		dev := fmt.Sprintf("usb-storage,bus=%s.0,drive=usbdisk%d,removable=on,serial=inert-usbdisk%d", xhciID, i, i)
		if !strings.Contains(a, drive) || !strings.Contains(a, dev) {
			t.Errorf("stick %d missing from %s", i, a)
		}
	}
	if strings.Contains(a, "bootindex") {
		t.Errorf("sticks must not take the boot from -kernel: %s", a)
	}
}
