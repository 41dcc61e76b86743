package kernel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoKernel means no kernel image with a matching module tree was found.
var ErrNoKernel = errors.New("no installed kernel")

// Kernel is one installed kernel: its image, its module tree and its config.
type Kernel struct {
	// Version is the release, as in /boot/vmlinuz-<Version> and uname -r.
	Version string
	// Vmlinuz is the kernel image.
	Vmlinuz string
	// ModulesDir is <modules root>/<Version>, holding modules.dep.
	ModulesDir string
	// Config is <boot>/config-<Version>, or "" when the package has none.
	Config string
}

// Installed picks the newest kernel in bootDir (vmlinuz-<version>) whose
// module tree modulesRoot/<version>/modules.dep exists, so the image and the
// modules always come from the same kernel. The host's running kernel
// (uname -r) plays no part.
func Installed(bootDir, modulesRoot string) (Kernel, error) {
	images, err := filepath.Glob(filepath.Join(bootDir, "vmlinuz-*"))
	if err != nil {
		return Kernel{}, fmt.Errorf("%w: %v", ErrNoKernel, err)
	}
	var best Kernel
	var skipped []string
	for _, img := range images {
		ver := strings.TrimPrefix(filepath.Base(img), "vmlinuz-")
		k, err := Find(bootDir, modulesRoot, ver)
		if err != nil {
			skipped = append(skipped, ver)
			continue
		}
		if best.Version == "" || CompareVersions(ver, best.Version) > 0 {
			best = k
		}
	}
	if best.Version == "" {
		if len(skipped) > 0 {
			return Kernel{}, fmt.Errorf("%w: %s has vmlinuz for %s but none has %s/<version>/modules.dep",
				ErrNoKernel, bootDir, strings.Join(skipped, ", "), modulesRoot)
		}
		return Kernel{}, fmt.Errorf("%w: no %s/vmlinuz-* (install linux-image-amd64)", ErrNoKernel, bootDir)
	}
	return best, nil
}

// Find returns the kernel of one version; its image and modules.dep must exist.
func Find(bootDir, modulesRoot, version string) (Kernel, error) {
	if version == "" || strings.ContainsAny(version, "/\x00") || version == "." || version == ".." {
		return Kernel{}, fmt.Errorf("%w: bad version %q", ErrNoKernel, version)
	}
	k := Kernel{
		Version:    version,
		Vmlinuz:    filepath.Join(bootDir, "vmlinuz-"+version),
		ModulesDir: filepath.Join(modulesRoot, version),
	}
	if st, err := os.Stat(k.Vmlinuz); err != nil || !st.Mode().IsRegular() {
		return Kernel{}, fmt.Errorf("%w: %s is not a file", ErrNoKernel, k.Vmlinuz)
	}
	if _, err := os.Stat(filepath.Join(k.ModulesDir, "modules.dep")); err != nil {
		return Kernel{}, fmt.Errorf("%w: %s has no modules.dep", ErrNoKernel, k.ModulesDir)
	}
	if cfg := filepath.Join(bootDir, "config-"+version); fileExists(cfg) {
		k.Config = cfg
	}
	return k, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
