package boot

import (
	"os"
	"path/filepath"
	"strings"
)

// VirtioPort returns the device name (vportNpM) of the virtio-serial port
// called name, read from <sysRoot>/class/virtio-ports/vport*/name. There is
// no udev in the image to make /dev/virtio-ports/<name>.
func VirtioPort(sysRoot, name string) (string, bool) {
	paths, _ := filepath.Glob(filepath.Join(sysRoot, "class", "virtio-ports", "vport*", "name"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err == nil && strings.TrimSpace(string(b)) == name {
			return filepath.Base(filepath.Dir(p)), true
		}
	}
	return "", false
}
