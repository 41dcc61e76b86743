package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"inert/scripts/harness"
)

func init() {
	register("qemu", "boot an image in QEMU (OVMF, swtpm, USB stick) and wait for the service", runQEMU)
}

func runQEMU(args []string) (err error) {
	fs := flag.NewFlagSet("qemu", flag.ContinueOnError)
	image := fs.String("image", "", "raw disk image to boot as a USB stick (required)")
	secureBoot := fs.Bool("secure-boot", false, "boot OVMF with our Secure Boot keys enrolled")
	keys := fs.String("keys", "secureboot", "key directory holding enrol/{db,KEK,PK}.auth (with --secure-boot)")
	extraDisks := fs.String("extra-disks", "", "comma-separated raw images attached as virtio disks")
	screenshot := fs.String("screenshot", "", "write a PNG of the screen here once the service is ready")
	serialLog := fs.String("serial-log", "", "write the serial console here (default: in the work directory)")
	exitAfterReady := fs.Bool("exit-after-ready", false, "stop the VM and exit 0 once the service answers")
	port := fs.Int("port", 18734, "host port forwarded to the guest's 8734")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for the service to answer")
	workDir := fs.String("workdir", "", "keep VM state and logs here (default: a temporary directory, removed on exit)")
	memory := fs.Int("memory", 1024, "guest memory in MiB")
	snapshot := fs.Bool("snapshot", false, "discard the guest's writes to the image")
	if done, err := parseFlags(fs, args); done || err != nil {
		return err
	}
	if *image == "" {
		return errors.New("--image is required")
	}
	if _, err := os.Stat(*image); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	dir := *workDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "inert-qemu-")
		if err != nil {
			return err
		}
		// Keep the logs of a failed boot; a clean run leaves nothing behind.
		defer func() {
			if err == nil {
				os.RemoveAll(tmp)
			}
		}()
		dir = tmp
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *secureBoot {
		fmt.Fprintln(os.Stderr, "qemu: preparing OVMF vars with our Secure Boot keys (cached after the first run)")
	}
	fmt.Fprintf(os.Stderr, "qemu: starting swtpm, OVMF and QEMU (TCG) for %s\n", *image)
	vm, err := harness.Start(ctx, harness.Config{
		Name:          "inert",
		WorkDir:       dir,
		Image:         *image,
		ImageSnapshot: *snapshot,
		Firmware:      harness.FirmwareOVMF,
		SecureBoot:    *secureBoot,
		KeysDir:       *keys,
		TPM:           true,
		ExtraDisks:    qemuSplitList(*extraDisks),
		Memory:        *memory,
		Net:           true,
		HostPort:      *port,
		SerialLog:     *serialLog,
	})
	if err != nil {
		return err
	}
	defer vm.Stop()
	go qemuPrintStatus(ctx, vm)

	url := fmt.Sprintf("http://127.0.0.1:%d/", vm.HostPort())
	if err := vm.AwaitHealthy(ctx, *timeout); err != nil {
		if status, ok := vm.LastStatus(); ok {
			return fmt.Errorf("%w\nlast status: %s\nserial log: %s", err, status, vm.SerialLogPath())
		}
		return fmt.Errorf("%w (no status from the guest)\nserial log: %s", err, vm.SerialLogPath())
	}
	fmt.Printf("Running at %s\n", url)
	if *screenshot != "" {
		// The splash shows the QR a probe interval after the service
		// answers: wait for it, so the picture is what a person scans.
		qctx, cancel := context.WithTimeout(ctx, time.Minute)
		text, _, err := vm.AwaitQR(qctx)
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "qemu: no QR code on the screen yet (%v); saving the screen as it is\n", err)
		} else {
			fmt.Fprintf(os.Stderr, "qemu: the screen shows a QR code for %s\n", text)
		}
		if err := vm.Screendump(*screenshot); err != nil {
			return fmt.Errorf("screenshot: %w", err)
		}
		fmt.Fprintf(os.Stderr, "qemu: screenshot written to %s\n", *screenshot)
	}
	if *exitAfterReady {
		return vm.Stop()
	}
	fmt.Fprintln(os.Stderr, "qemu: press Ctrl-C to stop the VM")
	select {
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "qemu: stopping")
		return vm.Stop()
	case <-vm.Done():
		if status, ok := vm.LastStatus(); ok {
			return fmt.Errorf("the VM exited: %v\nlast status: %s", vm.Wait(context.Background()), status)
		}
		return fmt.Errorf("the VM exited: %v", vm.Wait(context.Background()))
	}
}

// qemuPrintStatus shows each new status line from the guest's events as
// progress on stderr.
func qemuPrintStatus(ctx context.Context, vm *harness.VM) {
	last := ""
	for line := range vm.Events(ctx) {
		var ev struct {
			Status string `json:"status"`
		}
		if json.Unmarshal(line, &ev) == nil && ev.Status != "" && ev.Status != last {
			last = ev.Status
			fmt.Fprintf(os.Stderr, "qemu: guest: %s\n", ev.Status)
		}
	}
}

func qemuSplitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
