package vmtest

import (
	"fmt"
	"strconv"
	"strings"

	"inert/scripts/harness"
)

// xhciID is the QEMU id of the controller the sticks sit on.
const xhciID = "vmxhci"

// usbArgs attaches opts.USBDisks as removable usb-storage devices on one
// qemu-xhci controller. The controller is there whenever a stick is or may
// be plugged in. No bootindex: the VM boots the kernel given by -kernel.
func usbArgs(opts Options) []string {
	if len(opts.USBDisks) == 0 && len(opts.HotplugUSB) == 0 {
		return nil
	}
	args := []string{"-device", "qemu-xhci,id=" + xhciID}
	for i, img := range opts.USBDisks {
		id := fmt.Sprintf("usbdisk%d", i)
		args = append(args,
			"-drive", "if=none,format=raw,id="+id+",file="+img,
			"-device", fmt.Sprintf("usb-storage,bus=%s.0,drive=%s,removable=on,serial=inert-%s", xhciID, id, id))
	}
	return args
}

// parseHotplug recognises a HotplugRequest line (a test's own output, so
// it may carry go test's indentation) and returns the stick's index.
func parseHotplug(line string) (int, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), HotplugRequest)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(rest))
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// hotplugUSB plugs images[idx] into the running VM: a raw block node over
// the file, then a usb-storage device on the controller.
func hotplugUSB(vm *harness.VM, images []string, idx int) error {
	if idx >= len(images) {
		return fmt.Errorf("%w: guest asked to hot-plug USB stick %d of %d", ErrOptions, idx, len(images))
	}
	node := fmt.Sprintf("hotplug%d", idx)
	if _, err := vm.QMP("blockdev-add", map[string]any{
		"driver": "raw", "node-name": node,
		"file": map[string]any{"driver": "file", "filename": images[idx]},
	}); err != nil {
		return fmt.Errorf("vmtest: hot-plug stick %d: blockdev-add: %w", idx, err)
	}
	if _, err := vm.QMP("device_add", map[string]any{
		"driver": "usb-storage", "id": node, "bus": xhciID + ".0", "drive": node,
		"removable": true, "serial": "inert-" + node,
	}); err != nil {
		return fmt.Errorf("vmtest: hot-plug stick %d: device_add: %w", idx, err)
	}
	return nil
}
