package boot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ErrLockdownIncomplete: at least one lockdown write failed; the report
// still counts what succeeded.
var ErrLockdownIncomplete = errors.New("USB lockdown incomplete")

// LockdownReport counts what LockdownUSB changed.
type LockdownReport struct {
	RootHubs     int      `json:"root_hubs"`    // authorized_default set to 0
	UnboundHID   int      `json:"unbound_hid"`  // usbhid interfaces unbound
	Deauthorized int      `json:"deauthorized"` // HID-only devices set authorized=0
	Devices      []string `json:"deauthorized_devices,omitempty"`
}

// USB interface classes (bInterfaceClass).
const (
	usbClassHID         = "03"
	usbClassMassStorage = "08"
)

// LockdownUSB stops USB input devices from reaching the machine (CONTRACTS
// §1.13), in an order that closes the door first: root hubs stop
// authorising new devices, usbhid lets go of its interfaces, and devices with
// a HID interface but no mass-storage one are de-authorised. Every step is
// tried; failures are joined under ErrLockdownIncomplete.
func LockdownUSB(env Env) (LockdownReport, error) {
	var rep LockdownReport
	var errs []error
	devDir := filepath.Join(env.SysRoot, "bus", "usb", "devices")
	entries, err := os.ReadDir(devDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return rep, fmt.Errorf("%w: %v", ErrLockdownIncomplete, err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)

	for _, n := range names {
		if !usbBusRE.MatchString(n) {
			continue
		}
		if err := writeSysfs(filepath.Join(devDir, n, "authorized_default"), "0"); err != nil {
			errs = append(errs, err)
			continue
		}
		rep.RootHubs++
	}

	hidDrv := filepath.Join(env.SysRoot, "bus", "usb", "drivers", "usbhid")
	bound, err := os.ReadDir(hidDrv)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range bound {
		if !isUSBInterfaceName(e.Name()) {
			continue
		}
		if err := writeSysfs(filepath.Join(hidDrv, "unbind"), e.Name()); err != nil {
			errs = append(errs, err)
			continue
		}
		rep.UnboundHID++
	}

	classes := map[string]map[string]bool{} // device -> interface classes
	for _, n := range names {
		if !isUSBInterfaceName(n) {
			continue
		}
		dev, _, _ := strings.Cut(n, ":")
		b, err := readSmallFile(filepath.Join(devDir, n, "bInterfaceClass"))
		if err != nil {
			continue
		}
		if classes[dev] == nil {
			classes[dev] = map[string]bool{}
		}
		classes[dev][strings.ToLower(strings.TrimSpace(string(b)))] = true
	}
	for _, dev := range names {
		c := classes[dev]
		if !usbDeviceRE.MatchString(dev) || !c[usbClassHID] || c[usbClassMassStorage] {
			continue
		}
		if err := writeSysfs(filepath.Join(devDir, dev, "authorized"), "0"); err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Deauthorized++
		rep.Devices = append(rep.Devices, dev)
	}
	if len(errs) > 0 {
		return rep, fmt.Errorf("%w: %w", ErrLockdownIncomplete, errors.Join(errs...))
	}
	return rep, nil
}

// isUSBInterfaceName matches "<bus>-<port path>:<config>.<interface>",
// e.g. 1-1.2:1.0 (root hub interfaces are "1-0:1.0").
func isUSBInterfaceName(n string) bool {
	dev, iface, ok := strings.Cut(n, ":")
	if !ok {
		return false
	}
	cfg, num, ok := strings.Cut(iface, ".")
	return ok && isDigits(cfg) && isDigits(num) && usbDeviceRE.MatchString(dev)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
