// Command evinit is the harness self-test's /init: it loads the virtio
// console modules, writes one JSON event to org.inert.events echoing the
// nonce from the kernel command line and saying what it sees (framebuffer
// size, TPM), and powers off (after a while, with harness.hold=1).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"inert/scripts/guest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "evinit:", err)
	}
	_ = guest.PowerOff()
}

func run() error {
	if err := guest.MountAll(guest.BasicMounts); err != nil {
		return err
	}
	if err := guest.LoadModules(); err != nil {
		return err
	}
	port, err := guest.OpenPort("org.inert.events", 20*time.Second)
	if err != nil {
		return err
	}
	defer port.Close()
	nonce, _ := guest.Cmdline("harness.nonce")
	fbSize, _ := os.ReadFile("/sys/class/graphics/fb0/virtual_size")
	_, tpmErr := os.Stat("/sys/class/tpm/tpm0")
	line, err := json.Marshal(map[string]any{
		"step": "selftest", "state": "ok", "status": "guest up", "nonce": nonce, "pid": os.Getpid(),
		"fb0": strings.TrimSpace(string(fbSize)), "tpm0": tpmErr == nil,
	})
	if err != nil {
		return err
	}
	if _, err = port.Write(append(line, '\n')); err != nil {
		return err
	}
	if hold, _ := guest.Cmdline("harness.hold"); hold == "1" {
		// Keep the screen up while the host takes a screendump; the host
		// stops the VM, this bound only keeps a lost host from hanging it.
		time.Sleep(2 * time.Minute)
	}
	return nil
}
