package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"inert/scripts/harness"
)

func TestZZSmoke(t *testing.T) {
	if os.Getenv("SMOKE") == "" {
		t.Skip()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	vm, err := harness.Start(ctx, harness.Config{Name: "smoke", WorkDir: t.TempDir(),
		Kernel: "/boot/vmlinuz-6.1.0-56-amd64", Initrd: "/tmp/smoke/initrd.zst",
		Append: "console=ttyS0 inert.mode=" + os.Getenv("SMOKE") + " " + os.Getenv("SMOKE_ARGS"), Firmware: harness.FirmwareSeaBIOS, Net: true, HostPort: 0, Memory: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Stop()
	evs := vm.Events(ctx)
	deadline := time.After(150 * time.Second)
	for {
		select {
		case l := <-evs:
			fmt.Print(string(l))
		case <-deadline:
			fmt.Println(vm.SerialText())
			return
		}
	}
}
