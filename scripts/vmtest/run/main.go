// Command run compiles the tests of Go packages (`go test -c`, static) and
// runs them as root in a QEMU VM on the Debian kernel (scripts/vmtest). It
// is the privileged rung's entry point:
//
//	go run ./scripts/vmtest/run -pkg ./storage/... -modules dm_crypt,ext4
//
// Exit status: 0 all passed, 1 a test failed, 2 the harness failed.
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
	disks := fs.String("disks", "", "comma-separated raw disk images to attach as virtio-blk")
	ovmf := fs.Bool("ovmf", false, "boot with OVMF and VGA std (efivarfs, framebuffer tests) instead of SeaBIOS")
	tpm := fs.Bool("tpm", false, "attach a swtpm TPM")
	runRe := fs.String("run", "", "passed to each test binary as -test.run")
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

	tests, err := compile(ctx, work, split(*pkgs))
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmtest:", err)
		return 2
	}
	if len(tests) == 0 {
		fmt.Fprintln(os.Stderr, "vmtest: no package with tests matches", *pkgs)
		return 2
	}
	for i := range tests {
		if *runRe != "" {
			tests[i].Args = append(tests[i].Args, "-test.run="+*runRe)
		}
	}
	opts := vmtest.Options{
		Tests: tests, Modules: split(*modules), Disks: split(*disks),
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

// compile builds `go test -c` for every package with tests matching the
// patterns and returns them with their source directories (for testdata).
func compile(ctx context.Context, work string, patterns []string) ([]vmtest.Test, error) {
	root, err := harness.ModuleRoot()
	if err != nil {
		return nil, err
	}
	args := append([]string{"list", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{len .TestGoFiles}}\t{{len .XTestGoFiles}}"}, patterns...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s: %v: %s", strings.Join(patterns, " "), err, stderr.String())
	}
	var tests []vmtest.Test
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 || (f[2] == "0" && f[3] == "0") {
			continue
		}
		name := strings.ReplaceAll(strings.TrimPrefix(f[0], "inert/"), "/", "_")
		bin := filepath.Join(work, name+".test")
		fmt.Fprintf(os.Stderr, "vmtest: go test -c %s\n", f[0])
		if err := harness.BuildTest(ctx, f[0], bin); err != nil {
			return nil, err
		}
		tests = append(tests, vmtest.Test{Name: name, Binary: bin, DataDir: f[1]})
	}
	return tests, nil
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
