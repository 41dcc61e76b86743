// Package probe is run by vmtest's own test inside the VM: it checks what
// the runner promises (root, mounts, modules, disks, testdata) and has one
// test that fails on purpose so the failure path is exercised too.
package probe

import (
	"os"
	"strings"
	"testing"
)

func TestInVM(t *testing.T) {
	if os.Getuid() != 0 {
		t.Errorf("uid %d, want root", os.Getuid())
	}
	if os.Getenv("INERT_VMTEST") != "1" {
		t.Error("INERT_VMTEST not set: not running under the vmtest runner")
	}
	mounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, fs := range []string{" /sys/kernel/security securityfs", " /sys/kernel/config configfs", " /dev devtmpfs", " /run tmpfs"} {
		if !strings.Contains(string(mounts), fs) {
			t.Errorf("%q not mounted:\n%s", fs, mounts)
		}
	}
	if _, err := os.Stat("/sys/module/dm_mod"); err != nil {
		t.Errorf("dm_mod not loaded: %v", err)
	}
	if _, err := os.Stat("/sys/block/vda"); err != nil {
		t.Errorf("extra disk not attached as vda: %v", err)
	}
	data, err := os.ReadFile("testdata/marker.txt")
	if err != nil || strings.TrimSpace(string(data)) != "probe testdata" {
		t.Errorf("testdata/marker.txt = %q, %v", data, err)
	}
	t.Log("probe ran in the VM")
}

func TestFailsOnPurpose(t *testing.T) {
	t.Fatal("deliberate failure")
}
