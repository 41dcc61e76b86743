package vmtest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"inert/scripts/harness"
)

func TestRunInVMRejectsEmpty(t *testing.T) {
	if _, err := RunInVM(t.Context(), Options{}); !errors.Is(err, ErrOptions) {
		t.Errorf("err = %v, want ErrOptions", err)
	}
	_, err := RunInVM(t.Context(), Options{TestBinaries: []string{"/nonexistent.test"}, WorkDir: t.TempDir()})
	if !errors.Is(err, ErrOptions) {
		t.Errorf("missing binary: err = %v, want ErrOptions", err)
	}
}

// TestRunInVM runs the probe package's tests in one VM: one run must pass
// (root, mounts, the dm_mod module, a virtio disk, testdata all present),
// one must fail on purpose, and the report must say so.
func TestRunInVM(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU (VM rung); run without -short")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	work := t.TempDir()
	bin := filepath.Join(work, "probe.test")
	if err := harness.BuildTest(ctx, "./scripts/vmtest/testdata/probe", bin); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(work, "disk.img")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep, err := RunInVM(ctx, Options{
		Tests: []Test{
			{Name: "good", Binary: bin, DataDir: "testdata/probe", Args: []string{"-test.run=^TestInVM$"}},
			{Name: "bad", Binary: bin, Args: []string{"-test.run=^TestFailsOnPurpose$"}},
		},
		Modules: []string{"dm_mod", "virtio_blk"},
		Disks:   []string{disk},
		Output:  &out,
		WorkDir: filepath.Join(work, "run"),
	})
	if err != nil {
		t.Fatalf("%v\nguest output:\n%s", err, out.String())
	}
	if len(rep.Results) != 2 || rep.Results[0].Name != "good" || rep.Results[1].Name != "bad" {
		t.Fatalf("results = %+v", rep.Results)
	}
	if !rep.Results[0].Passed() {
		t.Errorf("probe failed in the VM:\n%s", strings.Join(rep.Results[0].Output, "\n"))
	}
	if rep.Results[1].Passed() || rep.Results[1].ExitCode != 1 {
		t.Errorf("deliberate failure reported exit %d", rep.Results[1].ExitCode)
	}
	if rep.Pass != 1 || rep.Fail != 1 || rep.Summary != "PASS 1 / FAIL 1" || rep.OK() {
		t.Errorf("summary %q pass=%d fail=%d ok=%v", rep.Summary, rep.Pass, rep.Fail, rep.OK())
	}
	if !strings.Contains(out.String(), "good: ") || !strings.Contains(strings.Join(rep.Results[0].Output, "\n"), "probe ran in the VM") {
		t.Errorf("guest output not streamed:\n%s", out.String())
	}
}

// TestAddHostBinaries: a host program arrives with its loader and every
// library ldd (a second reader of the same ELF facts) lists, at the same
// paths; relative paths are refused.
func TestAddHostBinaries(t *testing.T) {
	const bin = "/usr/sbin/cryptsetup"
	a := harness.NewInitramfs()
	if err := addHostBinaries(a, []string{bin}); err != nil {
		t.Fatal(err)
	}
	cpioPath := filepath.Join(t.TempDir(), "x.cpio")
	if err := a.WriteFile(cpioPath); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(cpioPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	list := exec.Command("cpio", "-it", "--quiet")
	list.Stdin = f
	out, err := list.Output()
	if err != nil {
		t.Fatalf("cpio -it: %v", err)
	}
	inArchive := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		inArchive["/"+strings.TrimPrefix(l, "/")] = true
	}
	ldd, err := exec.Command("ldd", bin).Output()
	if err != nil {
		t.Fatalf("ldd: %v", err)
	}
	want := []string{bin}
	for _, l := range strings.Split(string(ldd), "\n") {
		for _, f := range strings.Fields(l) {
			if strings.HasPrefix(f, "/") {
				want = append(want, f)
			}
		}
	}
	if len(want) < 3 {
		t.Fatalf("ldd listed too little to judge: %s", ldd)
	}
	for _, p := range want {
		if !inArchive[p] {
			t.Errorf("%s is not in the guest archive", p)
		}
	}
	if err := addHostBinaries(harness.NewInitramfs(), []string{"usr/sbin/cryptsetup"}); !errors.Is(err, ErrOptions) {
		t.Errorf("relative path: %v, want ErrOptions", err)
	}
	if err := addHostBinaries(harness.NewInitramfs(), []string{"/nonexistent/tool"}); !errors.Is(err, ErrOptions) {
		t.Errorf("missing binary: %v, want ErrOptions", err)
	}
}
