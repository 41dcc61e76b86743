package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"inert/scripts/harness"
)

// TestMakeQemu runs the README's first command exactly as a person would,
// with QEMU_EXIT=1 so it returns, and reads the QR code off its screenshot.
func TestMakeQemu(t *testing.T) {
	t.Parallel()
	vmSlots <- struct{}{}
	defer func() { <-vmSlots }()
	shot := filepath.Join(t.TempDir(), "out.png")
	cmd := exec.Command("make", "qemu", "QEMU_EXIT=1", "SCREENSHOT="+shot)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make qemu QEMU_EXIT=1: %v\n%s", err, tail(string(out), 40))
	}
	if !strings.Contains(string(out), "Running at http://127.0.0.1:18734/") {
		t.Errorf("make qemu did not print the URL:\n%s", tail(string(out), 20))
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := decodePNG(f)
	if err != nil {
		t.Fatal(err)
	}
	text, err := harness.DecodeQR(img)
	if err != nil || text != "http://10.0.2.15:8734/" {
		t.Errorf("screenshot QR: %q, %v", text, err)
	}
}
