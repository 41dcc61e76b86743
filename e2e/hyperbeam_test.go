package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"inert/scripts/harness"
)

// hyperbeamRelease builds a HyperBEAM release directory holding the test's
// stand-in hb.
func hyperbeamRelease(t *testing.T, exitAfter string) string {
	t.Helper()
	rel := filepath.Join(t.TempDir(), "release")
	if err := os.MkdirAll(filepath.Join(rel, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := run(repoRoot, "go", "build", "-trimpath", "-o", filepath.Join(rel, "bin", "hb"), "./e2e/fakehb"); err != nil {
		t.Fatal(err)
	}
	if exitAfter != "" {
		writeFile(t, filepath.Join(rel, "exit-after"), exitAfter)
	}
	return rel
}

// hyperbeamStick builds a stick for the shipped hyperbeam profile around a
// release; each release gets its own initramfs.
func hyperbeamStick(t *testing.T, release, config string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "initramfs.cpio.zst")
	if err := runEnv(repoRoot, []string{"HYPERBEAM_RELEASE=" + release}, inertCLI, "initramfs",
		"--profile", "hyperbeam", "--root", repoRoot, "--init", filepath.Join(work, "bin", "init"), "--out", out); err != nil {
		t.Fatal(err)
	}
	ukiPath := uki(t, out, "console=ttyS0,115200 loglevel=4 panic=0 no_timer_check lapee.mode=prod")
	img := filepath.Join(t.TempDir(), "stick.img")
	if err := run(repoRoot, inertCLI, "image", "--uki", ukiPath, "--out", img); err != nil {
		t.Fatal(err)
	}
	if config != "" {
		cfg := filepath.Join(t.TempDir(), "config.json")
		writeFile(t, cfg, config)
		if err := run(repoRoot, inertCLI, "esp", "set", "--image", img, "--config", cfg); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// TestHyperbeamContract boots the hyperbeam profile with an operator config
// that has "on" hooks and checks what HyperBEAM is given (CONTRACTS §1.15).
func TestHyperbeamContract(t *testing.T) {
	t.Parallel()
	config := `{"port": 8734, "on": {"start": [{"device": "operator@1.0", "path": "first"}]}}`
	img := hyperbeamStick(t, hyperbeamRelease(t, ""), config)
	vm := boot(t, harness.Config{Image: img, TPM: true})
	awaitHealthy(t, vm, bootLimit)

	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/inspect", vm.HostPort()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Env   []string          `json:"env"`
		Cwd   string            `json:"cwd"`
		Args  []string          `json:"args"`
		Files map[string]string `json:"files"`
		TPM0  bool              `json:"tpm0"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"HB_CONFIG=/tmp/config.json,/etc/lapee/lapee.json,/run/lapee/on-start-merged.json",
		"ERL_INETRC=/etc/erl_inetrc",
		"LAPEE_TPM_TCTI=device:/dev/tpm0",
	} {
		if !slices.Contains(got.Env, want) {
			t.Errorf("environment lacks %s: %v", want, got.Env)
		}
	}
	if got.Cwd != "/usr/lib/hyperbeam" || !slices.Equal(got.Args, []string{"/usr/lib/hyperbeam/bin/hb", "foreground"}) {
		t.Errorf("cwd %q args %v", got.Cwd, got.Args)
	}
	if got.Files["/tmp/config.json"] != config {
		t.Errorf("/tmp/config.json is %q, want the operator's bytes", got.Files["/tmp/config.json"])
	}
	var merged struct {
		On map[string][]map[string]any `json:"on"`
	}
	if err := json.Unmarshal([]byte(got.Files["/run/lapee/on-start-merged.json"]), &merged); err != nil {
		t.Fatalf("on-start-merged.json: %v", err)
	}
	start := merged.On["start"]
	if len(start) != 3 || start[0]["device"] != "operator@1.0" || start[2]["device"] != "zone@1.0" {
		t.Errorf("merged start hooks %v: want the operator's first, the base hooks last", start)
	}
	if !strings.Contains(got.Files["/etc/lapee/lapee.json"], `"initialized": "permanent"`) {
		t.Errorf("base config: %q", got.Files["/etc/lapee/lapee.json"])
	}
	if len(strings.TrimSpace(got.Files["/run/lapee/boot-uki-sha256"])) != 64 ||
		!strings.Contains(got.Files["/run/lapee/boot-uki-source"], "source=boot-media-scan") ||
		!strings.Contains(got.Files["/run/lapee/boot-uki-source"], "trusted-as-executed=false") {
		t.Errorf("UKI record: %q / %q", got.Files["/run/lapee/boot-uki-sha256"], got.Files["/run/lapee/boot-uki-source"])
	}
	if !strings.HasPrefix(got.Files["/run/lapee/primary-net"], "iface=") {
		t.Errorf("primary-net %q", got.Files["/run/lapee/primary-net"])
	}
	if !got.TPM0 {
		t.Errorf("/dev/tpm0 is not there for the service")
	}
}

// TestHyperbeamExit: when HyperBEAM exits, the boot stops with the
// contract's words and PID 1 parks.
func TestHyperbeamExit(t *testing.T) {
	t.Parallel()
	img := hyperbeamStick(t, hyperbeamRelease(t, "3s"), "")
	vm := boot(t, harness.Config{Image: img, TPM: true})
	if status := awaitHalt(t, vm, bootLimit); status != "Boot stopped: HyperBEAM exited with status 7." {
		t.Errorf("halt status %q", status)
	}
	assertParked(t, vm)
}
