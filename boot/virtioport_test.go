package boot

import (
	"os"
	"path/filepath"
	"testing"
)

func TestVirtioPort(t *testing.T) {
	sys := t.TempDir()
	root := filepath.Join(sys, "class", "virtio-ports")
	for dev, name := range map[string]string{"vport0p0": "", "vport1p1": "org.qemu.guest_agent.0", "vport1p2": "org.inert.events\n"} {
		if err := os.MkdirAll(filepath.Join(root, dev), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, dev, "name"), []byte(name), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	if dev, ok := VirtioPort(sys, "org.inert.events"); !ok || dev != "vport1p2" {
		t.Errorf("VirtioPort = %q, %v; want vport1p2", dev, ok)
	}
	if dev, ok := VirtioPort(sys, "org.inert"); ok {
		t.Errorf("prefix matched %q", dev)
	}
	if _, ok := VirtioPort(filepath.Join(sys, "missing"), "org.inert.events"); ok {
		t.Error("found a port in a missing directory")
	}
}
