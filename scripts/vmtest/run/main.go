// Command run compiles the tests of Go packages (`go test -c`, static) and
// runs them as root in a QEMU VM on the Debian kernel (scripts/vmtest). It
// is the privileged rung's entry point:
//
//	go run ./scripts/vmtest/run -pkg ./storage/... -modules dm_crypt,ext4
//
// Tests are compiled with -tags vmtest. By default only packages with at
// least one test file behind that tag are run, and only their TestVM*
// tests (-run): the rest of a package's tests are the unit rung's and run
// on the host. Exit status: 0 all passed, 1 a test failed, 2 the harness
// failed, 3 no package matched (nothing to run).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"inert/scripts/harness"
	"inert/scripts/vmtest"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("vmtest", flag.ContinueOnError)
	pkgs := fs.String("pkg", "", "comma-separated package patterns whose tests to run (e.g. ./storage/...)")
	modules := fs.String("modules", "", "comma-separated kernel modules to load in the guest (e.g. dm_crypt,ext4)")
	bins := fs.String("bin", "", "comma-separated absolute paths of host programs to put in the guest with their shared libraries (e.g. /usr/sbin/cryptsetup)")
	disks := fs.String("disks", "", "comma-separated raw disk images to attach as virtio-blk")
	usb := fs.String("usb", "", "comma-separated raw disk images to attach as USB sticks on qemu-xhci")
	hotplug := fs.String("hotplug-usb", "", "comma-separated raw disk images the guest may hot-plug as USB sticks (see vmtest.HotplugRequest)")
	netFlag := fs.Bool("net", false, "give the guest a virtio-net NIC on QEMU user networking (10.0.2.15/24, gateway 10.0.2.2)")
	share := fs.String("share", "", "host directory copied to /"+vmtest.SharePath+" in the guest ($INERT_VMTEST_SHARE)")
	tags := fs.String("tags", "vmtest", "build tags for go test -c")
	all := fs.Bool("all", false, "run every package with tests, not only those with vmtest-tagged test files")
	ovmf := fs.Bool("ovmf", false, "boot with OVMF and VGA std (efivarfs, framebuffer tests) instead of SeaBIOS")
	tpm := fs.Bool("tpm", false, "attach a swtpm TPM")
	runRe := fs.String("run", "^TestVM", "passed to each test binary as -test.run (empty: all tests)")
	timeout := fs.Duration("timeout", 15*time.Minute, "bound for the whole run")
	testTimeout := fs.Duration("test-timeout", 5*time.Minute, "bound for each test binary in the guest")
	memory := fs.Int("memory", 1024, "guest memory in MiB")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *pkgs == "" {
		fmt.Fprintln(os.Stderr, "vmtest: -pkg is required")
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	work, err := os.MkdirTemp("", "inert-vmtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmtest:", err)
		return 2
	}
	defer os.RemoveAll(work)

	tests, err := compile(ctx, work, split(*pkgs), *tags, *all)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmtest:", err)
		return 2
	}
	if len(tests) == 0 {
		fmt.Fprintf(os.Stderr, "vmtest: no package under %s has tests tagged %q\n", *pkgs, *tags)
		return 3
	}
	for i := range tests {
		if *runRe != "" {
			tests[i].Args = append(tests[i].Args, "-test.run="+*runRe)
		}
	}
	opts := vmtest.Options{
		Tests: tests, Modules: split(*modules), HostBinaries: split(*bins), Disks: split(*disks),
		USBDisks: split(*usb), HotplugUSB: split(*hotplug), Net: *netFlag, Share: *share,
		TPM: *tpm, Memory: *memory, Timeout: *timeout, TestTimeout: *testTimeout,
		WorkDir: filepath.Join(work, "run"),
	}
	if *ovmf {
		opts.Firmware = harness.FirmwareOVMF
	}
	fmt.Fprintf(os.Stderr, "vmtest: booting %d test binaries under QEMU (TCG)\n", len(tests))
	rep, err := vmtest.RunInVM(ctx, opts)
	for _, r := range rep.Results {
		verdict := "ok"
		if !r.Passed() {
			verdict = fmt.Sprintf("FAIL (exit %d)", r.ExitCode)
		}
		fmt.Printf("%-40s %s\n", r.Name, verdict)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmtest:", err)
		return 2
	}
	fmt.Println(rep.Summary)
	if !rep.OK() {
		return 1
	}
	return 0
}

// compile builds `go test -c -tags <tags>` for every package matching the
// patterns that has test files behind the tags (or any tests, with all)
// and returns them with their source directories (for testdata).
func compile(ctx context.Context, work string, patterns []string, tags string, all bool) ([]vmtest.Test, error) {
	root, err := harness.ModuleRoot()
	if err != nil {
		return nil, err
	}
	plainList, err := listTestFiles(ctx, root, patterns, "")
	if err != nil {
		return nil, err
	}
	plain := map[string]pkgTests{}
	for _, p := range plainList {
		plain[p.path] = p
	}
	tagged, err := listTestFiles(ctx, root, patterns, tags)
	if err != nil {
		return nil, err
	}
	var tests []vmtest.Test
	for _, p := range tagged {
		if p.files == 0 || (!all && p.files == plain[p.path].files) {
			continue
		}
		name := strings.ReplaceAll(strings.TrimPrefix(p.path, "inert/"), "/", "_")
		bin := filepath.Join(work, name+".test")
		fmt.Fprintf(os.Stderr, "vmtest: go test -c -tags %s %s\n", tags, p.path)
		if err := buildTest(ctx, root, p.path, tags, bin); err != nil {
			return nil, err
		}
		tests = append(tests, vmtest.Test{Name: name, Binary: bin, DataDir: p.dir})
	}
	return tests, nil
}

// pkgTests is one package as go list sees it under a set of build tags.
type pkgTests struct {
	path, dir string
	files     int // test files (internal and external)
}

// listTestFiles runs go list over the patterns, in go list's order.
func listTestFiles(ctx context.Context, root string, patterns []string, tags string) ([]pkgTests, error) {
	args := []string{"list", "-tags", tags, "-f", "{{.ImportPath}}\t{{.Dir}}\t{{len .TestGoFiles}}\t{{len .XTestGoFiles}}"}
	cmd := exec.CommandContext(ctx, "go", append(args, patterns...)...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s: %v: %s", strings.Join(patterns, " "), err, stderr.String())
	}
	var pkgs []pkgTests
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			continue
		}
		internal, err1 := strconv.Atoi(f[2])
		external, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("go list: unexpected line %q", line)
		}
		pkgs = append(pkgs, pkgTests{path: f[0], dir: f[1], files: internal + external})
	}
	return pkgs, nil
}

// buildTest compiles one package's tests, static, with the tags.
func buildTest(ctx context.Context, root, pkg, tags, out string) error {
	cmd := exec.CommandContext(ctx, "go", "test", "-c", "-trimpath", "-tags", tags, "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: go test -c %s: %v\n%s", harness.ErrBuild, pkg, err, b)
	}
	return nil
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
