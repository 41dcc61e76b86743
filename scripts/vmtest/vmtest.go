// Package vmtest is the privileged test rung: it runs compiled Go test
// binaries (`go test -c`) as root inside QEMU on the stock Debian kernel, for
// code that needs device-mapper, efivarfs, the framebuffer or USB removal,
// which the host cannot give. RunInVM packs the binaries, the modules they
// need and scripts/vmtest/runner (the guest's /init) into an initramfs,
// boots it through scripts/harness and collects the results from the
// org.inert.events port. scripts/vmtest/run is its command line.
package vmtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"inert/initramfs"
	"inert/scripts/harness"
)

var (
	// ErrNoSummary means the VM ended before the runner's summary line.
	ErrNoSummary = errors.New("vmtest: VM ended without a test summary")
	// ErrOptions means the options name nothing to run or a bad file.
	ErrOptions = errors.New("vmtest: bad options")
)

// Test is one test binary to run in the guest.
type Test struct {
	Name    string   // shown in reports; default: the binary's base name
	Binary  string   // host path of a `go test -c` binary (static)
	DataDir string   // host directory copied as the test's working dir (a package's testdata parent), optional
	Args    []string // extra test flags, e.g. -test.run=X
}

// Options is one VM run.
type Options struct {
	// TestBinaries is the short form of Tests: paths of test binaries.
	TestBinaries []string
	Tests        []Test
	Modules      []string // kernel modules to load (with their modules.dep closure)
	// HostBinaries are absolute paths of host programs (e.g.
	// /usr/sbin/cryptsetup) put at the same paths in the guest with their
	// dynamic loader and shared libraries (initramfs.ELFClosure), so a test
	// can compare inert against the reference tool on the same kernel.
	HostBinaries []string
	Disks        []string // raw images attached as virtio-blk disks
	// USBDisks are raw images attached as USB sticks (usb-storage,
	// removable) on a qemu-xhci controller, in order: the first is sda
	// when no other SCSI disk exists. Guest writes reach the files.
	USBDisks []string
	// HotplugUSB are raw images the guest may plug in on the same
	// controller while it runs, by printing HotplugRequest and an index.
	HotplugUSB []string
	// Net gives the guest one virtio-net NIC on QEMU user networking
	// (DHCP server 10.0.2.2, guest 10.0.2.15, DNS 10.0.2.3); the test
	// package needs the virtio_net module.
	Net bool
	// Share is a host directory copied to /SharePath in the guest.
	Share string
	// CPU is QEMU's -cpu model, default "max": under TCG it has RDRAND,
	// which the Debian kernel trusts to seed its RNG at boot, as on any
	// real x86-64 machine. QEMU's default model lacks it, and getrandom(2)
	// (crypto/rand, a DHCP transaction id) then blocks until jitter
	// entropy accumulates, which under TCG has taken from seconds to
	// minutes.
	CPU string
	// Firmware is SeaBIOS (fast) unless set; efivarfs and framebuffer tests
	// need harness.FirmwareOVMF (VGA std is on with OVMF).
	Firmware harness.Firmware
	TPM      bool
	Memory   int           // MiB, default 1024
	Timeout  time.Duration // whole run, default 10 minutes
	// TestTimeout bounds each binary in the guest, default 5 minutes.
	TestTimeout time.Duration
	WorkDir     string    // default: a temporary directory, removed afterwards
	Output      io.Writer // each guest output line, prefixed by its binary (default os.Stderr)
}

// Result is one binary's outcome.
type Result struct {
	Name     string
	ExitCode int // 0 passed; -1 did not run or was killed
	Output   []string
}

// Passed reports whether the binary exited 0.
func (r Result) Passed() bool { return r.ExitCode == 0 }

// Report is the whole run.
type Report struct {
	Results      []Result
	Pass, Fail   int
	Summary      string // the runner's "PASS n / FAIL m" line
	SerialLog    string // the guest console (kernel messages), for failures
	GuestErrors  []string
	BootDuration time.Duration // from QEMU start to the first message
}

// OK reports whether every binary ran and passed and neither side of the
// harness reported an error (a module that did not load, a hot-plug the
// host could not do).
func (r Report) OK() bool {
	return r.Fail == 0 && r.Pass == len(r.Results) && len(r.Results) > 0 && len(r.GuestErrors) == 0
}

// RunInVM boots the Debian kernel with the runner and the test binaries and
// returns their results. The error is about the harness (build, boot, lost
// VM), never about a failing test: check Report.OK.
func RunInVM(ctx context.Context, opts Options) (Report, error) {
	var rep Report
	tests := append([]Test(nil), opts.Tests...)
	for _, b := range opts.TestBinaries {
		tests = append(tests, Test{Binary: b})
	}
	if len(tests) == 0 {
		return rep, fmt.Errorf("%w: no test binaries", ErrOptions)
	}
	for _, t := range tests {
		if fi, err := os.Stat(t.Binary); err != nil || !fi.Mode().IsRegular() {
			return rep, fmt.Errorf("%w: test binary %q: %v", ErrOptions, t.Binary, err)
		}
	}
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Minute
	}
	if opts.TestTimeout == 0 {
		opts.TestTimeout = 5 * time.Minute
	}
	if opts.Output == nil {
		opts.Output = os.Stderr
	}
	if opts.Firmware == "" {
		opts.Firmware = harness.FirmwareSeaBIOS
	}
	if opts.CPU == "" {
		opts.CPU = "max"
	}
	for _, d := range append(append(append([]string(nil), opts.Disks...), opts.USBDisks...), opts.HotplugUSB...) {
		if fi, err := os.Stat(d); err != nil || !fi.Mode().IsRegular() {
			return rep, fmt.Errorf("%w: disk image %q: %v", ErrOptions, d, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	work := opts.WorkDir
	if work == "" {
		dir, err := os.MkdirTemp("", "inert-vmtest-")
		if err != nil {
			return rep, err
		}
		defer os.RemoveAll(dir)
		work = dir
	}
	k, err := harness.DefaultKernel()
	if err != nil {
		return rep, err
	}
	initrd, err := buildInitramfs(ctx, work, k, tests, opts)
	if err != nil {
		return rep, err
	}
	vga := "none"
	if opts.Firmware == harness.FirmwareOVMF {
		vga = "std"
	}
	start := time.Now()
	vm, err := harness.Start(ctx, harness.Config{
		Name:       "vmtest",
		WorkDir:    filepath.Join(work, "vm"),
		Kernel:     k.Image,
		Initrd:     initrd,
		Append:     "console=ttyS0 quiet panic=-1",
		Firmware:   opts.Firmware,
		VGA:        vga,
		TPM:        opts.TPM,
		ExtraDisks: opts.Disks,
		Memory:     opts.Memory,
		Net:        opts.Net,
		ExtraArgs:  append([]string{"-cpu", opts.CPU}, usbArgs(opts)...),
	})
	if err != nil {
		return rep, err
	}
	defer vm.Stop()

	byName := map[string]int{}
	for _, t := range tests {
		byName[t.Name] = len(rep.Results)
		rep.Results = append(rep.Results, Result{Name: t.Name, ExitCode: -1})
	}
	gotSummary := false
	waitErr := vm.WaitEvent(ctx, func(line []byte) bool {
		var m Message
		if json.Unmarshal(line, &m) != nil {
			return false
		}
		if rep.BootDuration == 0 {
			rep.BootDuration = time.Since(start)
		}
		i, known := byName[m.Binary]
		switch m.Kind {
		case KindOutput:
			fmt.Fprintf(opts.Output, "%s: %s\n", m.Binary, m.Line)
			if known {
				rep.Results[i].Output = append(rep.Results[i].Output, m.Line)
			}
			if idx, ok := parseHotplug(m.Line); ok {
				if err := hotplugUSB(vm, opts.HotplugUSB, idx); err != nil {
					rep.GuestErrors = append(rep.GuestErrors, err.Error())
					fmt.Fprintf(opts.Output, "vmtest host: %v\n", err)
				} else {
					fmt.Fprintf(opts.Output, "vmtest host: plugged in USB stick %d\n", idx)
				}
			}
		case KindExit:
			if known {
				rep.Results[i].ExitCode = m.Code
			}
			fmt.Fprintf(opts.Output, "%s: exit %d %s\n", m.Binary, m.Code, m.Line)
		case KindError:
			rep.GuestErrors = append(rep.GuestErrors, m.Line)
			fmt.Fprintf(opts.Output, "vmtest guest: %s\n", m.Line)
		case KindSummary:
			rep.Pass, rep.Fail, rep.Summary = m.Pass, m.Fail, m.Line
			gotSummary = true
			return true
		}
		return false
	})
	rep.SerialLog = vm.SerialText()
	if waitErr != nil && !gotSummary {
		return rep, fmt.Errorf("%w: %v; console tail: %s", ErrNoSummary, waitErr, lastLines(rep.SerialLog, 8))
	}
	if err := vm.Wait(ctx); err != nil {
		return rep, fmt.Errorf("vmtest: VM did not power off after the summary: %w", err)
	}
	return rep, nil
}

// buildInitramfs packs the runner, the tests (with their data directories),
// the modules and the plan, and names each test.
func buildInitramfs(ctx context.Context, work string, k harness.Kernel, tests []Test, opts Options) (string, error) {
	if err := os.MkdirAll(work, 0o755); err != nil {
		return "", err
	}
	runner := filepath.Join(work, "runner")
	if err := harness.BuildStatic(ctx, "./scripts/vmtest/runner", runner); err != nil {
		return "", err
	}
	a := harness.NewInitramfs()
	if err := a.AddHostFile("init", runner, 0o755); err != nil {
		return "", err
	}
	// The events port needs the virtio console; the runner mounts configfs,
	// a module on Debian.
	modules := append([]string{"virtio_pci", "virtio_console", "configfs"}, opts.Modules...)
	if err := a.AddModules(k, modules...); err != nil {
		return "", err
	}
	if err := addHostBinaries(a, opts.HostBinaries); err != nil {
		return "", err
	}
	plan := Plan{Timeout: opts.TestTimeout.String()}
	used := map[string]bool{}
	for i := range tests {
		t := &tests[i]
		if t.Name == "" {
			t.Name = strings.TrimSuffix(filepath.Base(t.Binary), ".test")
		}
		for base, n := t.Name, 2; used[t.Name]; n++ {
			t.Name = fmt.Sprintf("%s-%d", base, n)
		}
		used[t.Name] = true
		dir := path.Join("tests", t.Name)
		if err := a.AddHostFile(path.Join(dir, "test.bin"), t.Binary, 0o755); err != nil {
			return "", fmt.Errorf("%w: %v", ErrOptions, err)
		}
		if t.DataDir != "" {
			if err := addTree(a, path.Join(dir, "testdata"), filepath.Join(t.DataDir, "testdata")); err != nil {
				return "", err
			}
		}
		plan.Tests = append(plan.Tests, PlanTest{Name: t.Name, Path: "/" + dir + "/test.bin", Dir: "/" + dir, Args: t.Args})
	}
	if opts.Share != "" {
		if fi, err := os.Stat(opts.Share); err != nil || !fi.IsDir() {
			return "", fmt.Errorf("%w: share %q is not a directory", ErrOptions, opts.Share)
		}
		if err := addTree(a, SharePath, opts.Share); err != nil {
			return "", err
		}
	}
	planJSON, err := json.Marshal(plan)
	if err != nil {
		return "", err
	}
	if err := a.AddFile(PlanPath, planJSON, 0o644); err != nil {
		return "", err
	}
	out := filepath.Join(work, "vmtest.cpio")
	return out, a.WriteFile(out)
}

// addHostBinaries copies each binary and its ELF closure from the host to
// the same paths in the guest.
func addHostBinaries(a *harness.Initramfs, bins []string) error {
	for _, bin := range bins {
		if !filepath.IsAbs(bin) {
			return fmt.Errorf("%w: host binary %q is not an absolute path", ErrOptions, bin)
		}
		libs, err := initramfs.ELFClosure("/", bin)
		if err != nil {
			return fmt.Errorf("%w: host binary %s: %v", ErrOptions, bin, err)
		}
		for _, p := range append([]string{bin}, libs...) {
			// Stat follows symlinks: the guest gets the real bytes under
			// the name the loader asks for.
			fi, err := os.Stat(p)
			if err != nil {
				return fmt.Errorf("%w: host binary %s: %v", ErrOptions, p, err)
			}
			if err := a.AddHostFile(p, p, fi.Mode().Perm()); err != nil {
				return err
			}
		}
	}
	return nil
}

// maxTestdata caps what one package's testdata may add to the initramfs.
const maxTestdata = 256 << 20

// addTree copies the regular files under src (if it exists) to dst.
func addTree(a *harness.Initramfs, dst, src string) error {
	var total int64
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && p == src {
				return filepath.SkipDir
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if total += info.Size(); total > maxTestdata {
			return fmt.Errorf("%w: %s is over %d MiB", ErrOptions, src, maxTestdata>>20)
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		return a.AddHostFile(path.Join(dst, filepath.ToSlash(rel)), p, info.Mode().Perm())
	})
	if errors.Is(err, filepath.SkipDir) {
		return nil
	}
	return err
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
