package harness

import (
	"errors"
	"fmt"
	"os"

	"inert/boot/kmod"
	"inert/kernel"
)

var (
	// ErrNoKernel means no /boot/vmlinuz-<version> has its modules installed.
	ErrNoKernel = errors.New("harness: no Debian kernel with modules found")
	// ErrUnknownModule means a module is neither in modules.dep nor built in.
	ErrUnknownModule = errors.New("harness: unknown kernel module")
)

// Kernel is an installed Debian kernel: its image and module tree.
type Kernel struct {
	Version    string
	Image      string // /boot/vmlinuz-<version>
	ModulesDir string // /lib/modules/<version>
}

// DefaultKernel finds the installed Debian kernel under /boot and
// /lib/modules. The host's running kernel (uname -r) is deliberately not
// consulted: it is not the kernel the guests boot.
func DefaultKernel() (Kernel, error) {
	return FindKernel("/boot", "/lib/modules")
}

// FindKernel returns the newest vmlinuz-<version> in bootDir whose
// modulesRoot/<version>/modules.dep exists, chosen exactly as the image
// build chooses it (package kernel).
func FindKernel(bootDir, modulesRoot string) (Kernel, error) {
	k, err := kernel.Installed(bootDir, modulesRoot)
	if err != nil {
		return Kernel{}, fmt.Errorf("%w: %v", ErrNoKernel, err)
	}
	return Kernel{Version: k.Version, Image: k.Vmlinuz, ModulesDir: k.ModulesDir}, nil
}

// ModuleClosure returns the module files (relative to ModulesDir) needed to
// load the named modules, in the order the guest's loader must insert them,
// each once. It resolves names with the same index the appliance uses at
// boot (package kmod). Built-in modules need no file and are left out.
func (k Kernel) ModuleClosure(names []string) ([]string, error) {
	ix, err := kmod.ReadIndex(os.DirFS(k.ModulesDir))
	if err != nil {
		return nil, fmt.Errorf("harness: module index of %s: %w", k.Version, err)
	}
	var mods []string
	for _, n := range names {
		resolved, err := ix.Resolve(n)
		if errors.Is(err, kmod.ErrNoModule) {
			return nil, fmt.Errorf("%w: %q in kernel %s", ErrUnknownModule, n, k.Version)
		}
		if err != nil {
			return nil, err
		}
		mods = append(mods, resolved...)
	}
	order, err := ix.Closure(mods)
	if err != nil {
		return nil, fmt.Errorf("harness: module closure in kernel %s: %w", k.Version, err)
	}
	files := make([]string, 0, len(order))
	for _, m := range order {
		if p := ix.Path(m); p != "" {
			files = append(files, p)
		}
	}
	return files, nil
}
