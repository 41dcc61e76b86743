//go:build linux

package guest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFindPort(t *testing.T) {
	root := t.TempDir()
	for dev, name := range map[string]string{"vport0p0": "", "vport1p1": "org.qemu.guest_agent.0", "vport1p2": "org.inert.events\n"} {
		if err := os.MkdirAll(filepath.Join(root, dev), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, dev, "name"), []byte(name), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	if dev, ok := findPort(root, "org.inert.events"); !ok || dev != "vport1p2" {
		t.Errorf("findPort = %q, %v; want vport1p2", dev, ok)
	}
	if dev, ok := findPort(root, "org.inert"); ok {
		t.Errorf("prefix matched %q", dev)
	}
	if _, ok := findPort(filepath.Join(root, "missing"), "org.inert.events"); ok {
		t.Error("found a port in a missing directory")
	}
}

func TestCmdlineValue(t *testing.T) {
	line := "console=ttyS0 harness.nonce=abc  harness.hold=1 harness.nonce2=x\n"
	cases := map[string]string{"harness.nonce": "abc", "harness.hold": "1", "console": "ttyS0"}
	for key, want := range cases {
		if got, ok := cmdlineValue(line, key); !ok || got != want {
			t.Errorf("%s = %q, %v; want %q", key, got, ok, want)
		}
	}
	if got, ok := cmdlineValue(line, "harness"); ok {
		t.Errorf("bare prefix matched %q", got)
	}
}
