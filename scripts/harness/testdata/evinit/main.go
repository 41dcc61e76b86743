// Command evinit is the harness self-test's /init: it loads the virtio
// console modules, writes one JSON event echoing the nonce from the kernel
// command line to org.inert.events, and powers off.
package main

import (
	"encoding/json"
	"fmt"
	"os"
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
	line, err := json.Marshal(map[string]any{"step": "selftest", "state": "ok", "status": "guest up", "nonce": nonce, "pid": os.Getpid()})
	if err != nil {
		return err
	}
	_, err = port.Write(append(line, '\n'))
	return err
}
