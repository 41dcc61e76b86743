package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"inert/appliance"
	"inert/scripts/harness"
)

const (
	bootLimit = 6 * time.Minute // TCG with OVMF, two VMs sharing two cores
)

// TestHappyPath boots the demo stick as a laptop would and checks what the
// appliance reports: the service answers through the port forward, the boot
// USB is gone, the network is QEMU's, the evidence is complete.
func TestHappyPath(t *testing.T) {
	t.Parallel()
	img, ukiPath := stick{}.image(t)
	vm := boot(t, harness.Config{Image: img, TPM: true})
	started := time.Now() // boot returns once QEMU runs (after waiting for a slot)
	awaitHealthy(t, vm, bootLimit)
	fmt.Printf("BENCH boot-to-ready: QEMU start to the service answering through the port forward %s (OVMF, TCG)\n",
		time.Since(started).Round(100*time.Millisecond))
	ev := evidence(t, vm)

	if got, want := field[string](t, ev, "uki_sha256"), sha256File(t, ukiPath); got != want {
		t.Errorf("uki_sha256 %s, want the sha256 of the signed UKI %s", got, want)
	}
	netw := field[map[string]string](t, ev, "network")
	for k, want := range map[string]string{"ip": "10.0.2.15", "gw": "10.0.2.2", "dns": "10.0.2.3", "iface": "eth0"} {
		if !strings.HasPrefix(netw[k], want) {
			t.Errorf("primary-net %s=%q, want %q", k, netw[k], want)
		}
	}
	cfg := field[map[string]any](t, ev, "config")
	if cfg["present"] != false || cfg["path"] != "/tmp/config.json" {
		t.Errorf("config evidence %v: want absent, given as /tmp/config.json", cfg)
	}
	for _, dev := range field[[]string](t, ev, "block_devices") {
		if strings.HasPrefix(dev, "sd") {
			t.Errorf("block device %s still present after the detach", dev)
		}
	}
	detach := awaitEvent(t, vm, time.Second, "the detach", func(e appliance.Event) bool {
		return e.Step == "detach" && e.Data["outcome"] != ""
	})
	if detach.Data["outcome"] != "removed" {
		t.Errorf("USB stick detach outcome %q, want removed", detach.Data["outcome"])
	}
	for _, e := range events(vm) {
		if e.State == appliance.StateFail {
			t.Errorf("step %s failed: %s", e.Step, e.Message)
		}
	}
	if m := regexp.MustCompile(`(?i)kernel panic`).FindString(vm.SerialText()); m != "" {
		t.Errorf("serial log shows a %s", m)
	}
	assertSplashShowsURL(t, vm)
	reportBootTiming(t, vm)
}

// assertSplashShowsURL reads the QR code off the screen with an independent
// decoder and checks that no kernel console text drew over the splash.
func assertSplashShowsURL(t *testing.T, vm *harness.VM) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	text, img, err := vm.AwaitQR(ctx)
	if err != nil {
		t.Fatalf("splash: %v", err)
	}
	if text != "http://10.0.2.15:8734/" {
		t.Errorf("the QR code says %q", text)
	}
	// fbcon draws kernel messages from the top-left corner: that band must
	// be plain background.
	bg := img.RGBAAt(0, 0)
	for y := 0; y < 64; y++ {
		for x := 0; x < img.Bounds().Dx()/3; x++ {
			if c := img.RGBAAt(x, y); c != bg {
				t.Fatalf("pixel (%d,%d) is %v, not the background %v: something drew over the splash", x, y, c, bg)
			}
		}
	}
}

// reportBootTiming prints the boot benchmark: kernel start of /init to the
// service exec, from PID 1's own clock, and the DHCP figure.
func reportBootTiming(t *testing.T, vm *harness.VM) {
	for _, e := range events(vm) {
		if e.Step == "service" && e.State == appliance.StateStart && e.Data["exec_uptime_ms"] != "" {
			start, _ := strconv.Atoi(e.Data["pid1_start_uptime_ms"])
			exec, _ := strconv.Atoi(e.Data["exec_uptime_ms"])
			fmt.Printf("BENCH boot: kernel clock at /init %d ms, at service exec %d ms: /init to exec %d ms (TCG)\n",
				start, exec, exec-start)
		}
		if ms := e.Data["link_to_lease_ms"]; ms != "" {
			fmt.Printf("BENCH network: link up to primary lease %s ms (TCG)\n", ms)
		}
	}
}

// TestNoESP: a stick without the marker is not the boot ESP; the boot goes on
// without operator files and says so.
func TestNoESP(t *testing.T) {
	t.Parallel()
	img, _ := stick{Delete: []string{"/LAPEE.MARKER"}}.image(t)
	vm := boot(t, harness.Config{Image: img, TPM: true})
	awaitEvent(t, vm, bootLimit, "the no-ESP status", func(e appliance.Event) bool {
		return e.Step == "esp" && e.State == appliance.StateFail &&
			e.Status == "Boot USB was not found; continuing without Wi-Fi settings."
	})
	awaitHealthy(t, vm, bootLimit)
	ev := evidence(t, vm)
	if cfg := field[map[string]any](t, ev, "config"); cfg["present"] != false {
		t.Errorf("config %v without an ESP", cfg)
	}
}

// TestTwoESPs: a second disk carrying a copy of the boot ESP halts the boot.
func TestTwoESPs(t *testing.T) {
	t.Parallel()
	img, _ := stick{}.image(t)
	twin := filepath.Join(t.TempDir(), "twin.img")
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, twin, string(b))
	vm := boot(t, harness.Config{Image: img, ExtraDisks: []string{twin}, TPM: true})
	status := awaitHalt(t, vm, bootLimit)
	if !strings.Contains(status, "more than one boot USB") {
		t.Errorf("halt status %q", status)
	}
	assertParked(t, vm)
}

// assertParked checks the VM is alive and PID 1 did not panic.
func assertParked(t *testing.T, vm *harness.VM) {
	t.Helper()
	if _, err := vm.QMP("query-status", nil); err != nil {
		t.Errorf("VM not answering after the halt: %v", err)
	}
	if strings.Contains(vm.SerialText(), "Kernel panic") {
		t.Errorf("kernel panic on the serial console")
	}
}

// TestBadConfigs: config.json files inert must refuse. Each boot keeps "{}",
// says why, and the service still starts.
func TestBadConfigs(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ config, reason string }{
		"rejected top-level key": {`{"trusted_devices": ["x"]}`, "trusted-devices"},
		"nested measurement-body-source": {
			`{"a": {"b": [{"c": {"Measurement_Body_Source": "hook"}}]}}`, "measurement-body-source"},
		"not an object": {`["a"]`, "object"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			img, _ := stick{Raw: map[string]string{"/EFI/boot/config.json": tc.config}}.image(t)
			vm := boot(t, harness.Config{Image: img, TPM: true})
			ev := awaitEvent(t, vm, bootLimit, "the rejection", func(e appliance.Event) bool {
				return e.Step == "esp" && strings.Contains(e.Status, "config.json was rejected")
			})
			// The status names the key as the operator wrote it; compare
			// canonicalised, as the rules do.
			canon := strings.ReplaceAll(strings.ToLower(ev.Status), "_", "-")
			if !strings.Contains(canon, tc.reason) || !strings.HasSuffix(ev.Status, "using {}.") {
				t.Errorf("status %q does not say why (%s) and what happens", ev.Status, tc.reason)
			}
			awaitHealthy(t, vm, bootLimit)
			cfg := field[map[string]any](t, evidence(t, vm), "config")
			reason := strings.ReplaceAll(strings.ToLower(fmt.Sprint(cfg["reason"])), "_", "-")
			if cfg["present"] != false || !strings.Contains(reason, tc.reason) {
				t.Errorf("config evidence %v", cfg)
			}
		})
	}
}

// TestGoodConfig: an accepted config reaches the service byte for byte.
func TestGoodConfig(t *testing.T) {
	t.Parallel()
	config := `{"port": 8734, "note": "operator"}`
	img, _ := stick{Config: config}.image(t)
	vm := boot(t, harness.Config{Image: img, TPM: true})
	awaitHealthy(t, vm, bootLimit)
	cfg := field[map[string]any](t, evidence(t, vm), "config")
	if cfg["present"] != true || cfg["sha256"] != sha256Hex(config) {
		t.Errorf("config evidence %v, want present with sha256 %s", cfg, sha256Hex(config))
	}
}

// TestWorkerFaults: a panic in the worker, or a worker stuck in a step past
// its deadline (the hook ignores its context, as a hung syscall would, so
// PID 1 must kill it), is a halt naming the step: never a kernel panic.
func TestWorkerFaults(t *testing.T) {
	t.Parallel()
	for _, fault := range []struct{ kind, step string }{{"panic", "esp"}, {"hang", "usb-lockdown"}} {
		t.Run(fault.kind, func(t *testing.T) {
			t.Parallel()
			img, _ := stick{Cmdline: prodCmdline + " inert.fault=" + fault.kind + "@" + fault.step}.image(t)
			vm := boot(t, harness.Config{Image: img, TPM: true})
			want := "Boot stopped: internal error in " + fault.step + "."
			if status := awaitHalt(t, vm, bootLimit); status != want {
				t.Errorf("halt status %q, want %q", status, want)
			}
			assertParked(t, vm)
		})
	}
}

// TestSignalsToPID1: SIGTERM, SIGHUP and SIGINT sent to PID 1 during the boot
// change nothing, and Ctrl-Alt-Del does not reboot.
func TestSignalsToPID1(t *testing.T) {
	t.Parallel()
	img, _ := stick{Cmdline: prodCmdline + " inert.fault=signals@network"}.image(t)
	vm := boot(t, harness.Config{Image: img, TPM: true})
	awaitEvent(t, vm, bootLimit, "the signals", func(e appliance.Event) bool {
		return strings.HasPrefix(e.Message, "sent SIGTERM")
	})
	awaitHealthy(t, vm, bootLimit)
	if _, err := vm.QMP("send-key", map[string]any{"keys": []map[string]string{
		{"type": "qcode", "data": "ctrl"}, {"type": "qcode", "data": "alt"}, {"type": "qcode", "data": "delete"}}}); err != nil {
		t.Fatal(err)
	}
	// The VM runs with -no-reboot: a reboot would end QEMU. Prove the guest
	// still serves after the key press has been handled.
	awaitHealthy(t, vm, time.Minute)
	select {
	case <-vm.Done():
		t.Fatal("the VM went away after Ctrl-Alt-Del")
	default:
	}
	assertParked(t, vm)
}

// TestServiceExit: when the service exits the boot stops, STOPPED, and PID 1
// parks (no reboot loop).
func TestServiceExit(t *testing.T) {
	t.Parallel()
	manifest := exitingManifest(t)
	img, _ := stick{Manifest: manifest}.image(t)
	vm := boot(t, harness.Config{Image: img, TPM: true})
	status := awaitHalt(t, vm, bootLimit)
	if status != "Boot stopped: the demo service exited with status 3." {
		t.Errorf("halt status %q", status)
	}
	assertParked(t, vm)
	assertStoppedTheme(t, vm)
}

// assertStoppedTheme waits until the screen turns the unmistakable red of
// STOPPED (the splash redraws on the state change).
func assertStoppedTheme(t *testing.T, vm *harness.VM) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	red := func(c color.RGBA) bool { return c.R > 120 && int(c.R) > 2*int(c.G) && int(c.R) > 2*int(c.B) }
	img, err := vm.AwaitScreen(ctx, func(img *image.RGBA) bool { return red(img.RGBAAt(2, 2)) })
	if err != nil {
		if img != nil {
			t.Fatalf("the screen background is %v, not the STOPPED red: %v", img.RGBAAt(2, 2), err)
		}
		t.Fatal(err)
	}
}

// TestServiceExitPowerOff: a profile whose exit policy is poweroff takes the
// terminal path (TERM, grace, KILL, unmount, sync, reboot(2)) and the
// machine really powers off.
func TestServiceExitPowerOff(t *testing.T) {
	t.Parallel()
	manifest := exitingManifestWith(t, "poweroff")
	img, _ := stick{Manifest: manifest}.image(t)
	vm := boot(t, harness.Config{Image: img, TPM: true})
	ev := awaitEvent(t, vm, bootLimit, "the power-off", func(e appliance.Event) bool {
		return e.Action == appliance.ActionPowerOff
	})
	if ev.Status != "Boot stopped: the demo service exited with status 3." {
		t.Errorf("status %q", ev.Status)
	}
	select {
	case <-vm.Done():
	case <-time.After(2 * time.Minute):
		t.Fatal("the VM did not power off")
	}
	if strings.Contains(vm.SerialText(), "Kernel panic") {
		t.Error("kernel panic while powering off")
	}
}

// exitingManifest is the demo profile with a service that exits with status
// 3 a few seconds after it starts.
func exitingManifest(t *testing.T) string { return exitingManifestWith(t, "park") }

func exitingManifestWith(t *testing.T, onExit string) string {
	b, err := os.ReadFile(filepath.Join(repoRoot, "appliance", "profiles", "demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	svc := m["service"].(map[string]any)
	env := svc["env"].(map[string]any)
	env["INERT_DEMO_EXIT_AFTER"] = "5s"
	env["INERT_DEMO_EXIT_STATUS"] = strconv.Itoa(3)
	svc["on_exit"] = onExit
	out, _ := json.MarshalIndent(m, "", "  ")
	path := filepath.Join(work, "exiting-"+onExit+".json")
	mu.Lock()
	defer mu.Unlock()
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
