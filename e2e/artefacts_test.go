package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"inert/appliance"
	"inert/scripts/harness"
)

// The artefacts are built once per run, with the same CLI an operator uses.
var (
	work     string // temp dir for this run
	repoRoot string
	inertCLI string
	keysDir  string

	mu         sync.Mutex
	initramfss = map[string]string{} // manifest -> initramfs path
	ukis       = map[string]string{} // initramfs+cmdline -> UKI path
)

// vmSlots lets two VMs run at once: the machines have two cores.
var vmSlots = make(chan struct{}, 2)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		flag.Parse()
		if testing.Short() {
			// The unit rung (go test -short ./...) has no VMs; `make e2e`
			// runs this package.
			fmt.Println("e2e: not run with -short; run make e2e")
			return 0
		}
		var err error
		if repoRoot, err = filepath.Abs(".."); err != nil {
			panic(err)
		}
		if work, err = os.MkdirTemp("", "inert-e2e-"); err != nil {
			panic(err)
		}
		defer os.RemoveAll(work)
		if err := buildBinaries(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: building:", err)
			return 1
		}
		return m.Run()
	}())
}

func run(dir string, name string, args ...string) error {
	return runEnv(dir, nil, name, args...)
}

// runEnv runs a command with extra environment variables.
func runEnv(dir string, env []string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return nil
}

func buildBinaries() error {
	bin := filepath.Join(work, "bin")
	for _, b := range []struct{ pkg, out string }{
		{"./init", "init"}, {"./cmd/inert-demo", "inert-demo"}, {"./cmd/inert", "inert"},
	} {
		if err := run(repoRoot, "go", "build", "-trimpath", "-buildvcs=false", "-o", filepath.Join(bin, b.out), b.pkg); err != nil {
			return err
		}
	}
	inertCLI = filepath.Join(bin, "inert")
	keysDir = filepath.Join(work, "secureboot")
	return run(repoRoot, inertCLI, "keys", "--dir", keysDir)
}

// initramfsFor builds (once) the initramfs of a manifest file; the demo
// payload is taken from this run's build.
func initramfsFor(t *testing.T, manifest string) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if p, ok := initramfss[manifest]; ok {
		return p
	}
	// The payload src paths are relative to a root holding build/bin.
	root := filepath.Join(work, "root")
	if err := os.MkdirAll(filepath.Join(root, "build"), 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.Symlink(filepath.Join(work, "bin"), filepath.Join(root, "build", "bin"))
	out := filepath.Join(work, fmt.Sprintf("initramfs-%d.cpio.zst", len(initramfss)))
	if err := run(repoRoot, inertCLI, "initramfs", "--manifest", manifest, "--root", root,
		"--init", filepath.Join(work, "bin", "init"), "--out", out); err != nil {
		t.Fatal(err)
	}
	initramfss[manifest] = out
	return out
}

// uki builds (once) a signed UKI for an initramfs and command line.
func uki(t *testing.T, initramfs, cmdline string) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	key := initramfs + "\x00" + cmdline
	if p, ok := ukis[key]; ok {
		return p
	}
	out := filepath.Join(work, fmt.Sprintf("uki-%d.efi", len(ukis)))
	if err := run(repoRoot, inertCLI, "uki", "--initramfs", initramfs, "--cmdline", cmdline,
		"--sign-dir", keysDir, "--out", out); err != nil {
		t.Fatal(err)
	}
	ukis[key] = out
	return out
}

// stick describes the USB image of one scenario.
type stick struct {
	Manifest string // default: the demo profile
	Cmdline  string // default: prod
	Config   string // operator config.json applied with `inert esp set`
	// Raw files are put on the ESP with mtools, bypassing validation, as an
	// attacker or a careless operator would.
	Raw map[string]string
	// Delete removes files from the ESP.
	Delete []string
}

const prodCmdline = "console=ttyS0,115200 loglevel=4 panic=0 no_timer_check inert.mode=prod"

// image builds the stick's disk image in the test's temp dir.
func (s stick) image(t *testing.T) (img, ukiPath string) {
	t.Helper()
	manifest := s.Manifest
	if manifest == "" {
		manifest = filepath.Join(repoRoot, "appliance", "profiles", "demo.json")
	}
	cmdline := s.Cmdline
	if cmdline == "" {
		cmdline = prodCmdline
	}
	ukiPath = uki(t, initramfsFor(t, manifest), cmdline)
	img = filepath.Join(t.TempDir(), "stick.img")
	if err := run(repoRoot, inertCLI, "image", "--uki", ukiPath, "--out", img); err != nil {
		t.Fatal(err)
	}
	if s.Config != "" {
		cfg := filepath.Join(t.TempDir(), "config.json")
		writeFile(t, cfg, s.Config)
		if err := run(repoRoot, inertCLI, "esp", "set", "--image", img, "--config", cfg); err != nil {
			t.Fatal(err)
		}
	}
	at := img + "@@1M" // the ESP starts at 1 MiB
	for name, content := range s.Raw {
		src := filepath.Join(t.TempDir(), "raw")
		writeFile(t, src, content)
		_ = run(repoRoot, "mmd", "-i", at, "::/EFI/boot")
		if err := run(repoRoot, "mcopy", "-o", "-i", at, src, "::"+name); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range s.Delete {
		if err := run(repoRoot, "mdel", "-i", at, "::"+name); err != nil {
			t.Fatal(err)
		}
	}
	return img, ukiPath
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// boot starts a VM on img, waiting for a free slot first.
func boot(t *testing.T, cfg harness.Config) *harness.VM {
	t.Helper()
	vmSlots <- struct{}{}
	t.Cleanup(func() { <-vmSlots })
	if cfg.Name == "" {
		cfg.Name = strings.ReplaceAll(t.Name(), "/", "-")
	}
	if cfg.WorkDir == "" {
		cfg.WorkDir = t.TempDir()
	}
	cfg.Net = true
	if cfg.SecureBoot {
		cfg.KeysDir = keysDir
		cfg.VarsCacheDir = filepath.Join(work, "vars")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	vm, err := harness.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = vm.Stop()
		if t.Failed() {
			t.Logf("serial log of %s:\n%s", cfg.Name, tail(vm.SerialText(), 60))
		}
	})
	return vm
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// awaitEvent waits for the first event satisfying match.
func awaitEvent(t *testing.T, vm *harness.VM, limit time.Duration, what string, match func(appliance.Event) bool) appliance.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var found appliance.Event
	err := vm.WaitEvent(ctx, func(line []byte) bool {
		var ev appliance.Event
		if json.Unmarshal(line, &ev) != nil {
			return false
		}
		if match(ev) {
			found = ev
			return true
		}
		return false
	})
	if err != nil {
		last, _ := vm.LastStatus()
		t.Fatalf("awaiting %s: %v (last status: %q)", what, err, last)
	}
	return found
}

// events returns every event seen so far.
func events(vm *harness.VM) []appliance.Event {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var out []appliance.Event
	for line := range vm.Events(ctx) {
		var ev appliance.Event
		if json.Unmarshal(line, &ev) == nil {
			out = append(out, ev)
		}
	}
	return out
}

// awaitHealthy waits for the service's health probe through the host port
// forward.
func awaitHealthy(t *testing.T, vm *harness.VM, limit time.Duration) {
	t.Helper()
	if err := vm.AwaitHealthy(context.Background(), limit); err != nil {
		last, _ := vm.LastStatus()
		t.Fatalf("%v (last status %q)", err, last)
	}
}

// evidence fetches /evidence.json.
func evidence(t *testing.T, vm *harness.VM) map[string]json.RawMessage {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/evidence.json", vm.HostPort()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var ev map[string]json.RawMessage
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("evidence.json: %v\n%s", err, b)
	}
	return ev
}

func field[T any](t *testing.T, ev map[string]json.RawMessage, key string) T {
	t.Helper()
	var v T
	raw, ok := ev[key]
	if !ok {
		t.Fatalf("evidence has no %q", key)
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("evidence %q: %v", key, err)
	}
	return v
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// terminal waits for PID 1's terminal event (halt) and returns its status.
func awaitHalt(t *testing.T, vm *harness.VM, limit time.Duration) string {
	t.Helper()
	ev := awaitEvent(t, vm, limit, "a halt", func(e appliance.Event) bool {
		return e.Action == appliance.ActionHalt && e.Step == "pid1"
	})
	return ev.Status
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func decodePNG(r io.Reader) (image.Image, error) { return png.Decode(r) }
