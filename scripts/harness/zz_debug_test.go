package harness

import "testing"

func TestZZMakeInitrd(t *testing.T) {
	k, _ := DefaultKernel()
	a := NewInitramfs()
	a.AddHostFile("init", "/tmp/hb/evinit", 0o755)
	if err := a.AddModules(k, "virtio_pci", "virtio_console"); err != nil {
		t.Fatal(err)
	}
	a.WriteFile("/tmp/hb/initrd.cpio")
}
