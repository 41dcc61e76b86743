package harness

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
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
// modulesRoot/<version>/modules.dep exists.
func FindKernel(bootDir, modulesRoot string) (Kernel, error) {
	images, err := filepath.Glob(filepath.Join(bootDir, "vmlinuz-*"))
	if err != nil {
		return Kernel{}, fmt.Errorf("%w: %v", ErrNoKernel, err)
	}
	var found []Kernel
	for _, img := range images {
		ver := strings.TrimPrefix(filepath.Base(img), "vmlinuz-")
		mods := filepath.Join(modulesRoot, ver)
		if _, err := os.Stat(filepath.Join(mods, "modules.dep")); err == nil {
			found = append(found, Kernel{Version: ver, Image: img, ModulesDir: mods})
		}
	}
	if len(found) == 0 {
		return Kernel{}, fmt.Errorf("%w in %s and %s", ErrNoKernel, bootDir, modulesRoot)
	}
	sort.Slice(found, func(i, j int) bool { return versionLess(found[i].Version, found[j].Version) })
	return found[len(found)-1], nil
}

// versionLess orders kernel versions by their numeric fields (6.1.0-9 < 6.1.0-56).
func versionLess(a, b string) bool {
	fa := strings.FieldsFunc(a, func(r rune) bool { return r == '.' || r == '-' })
	fb := strings.FieldsFunc(b, func(r rune) bool { return r == '.' || r == '-' })
	for i := 0; i < len(fa) && i < len(fb); i++ {
		if fa[i] == fb[i] {
			continue
		}
		var na, nb int
		_, ea := fmt.Sscan(fa[i], &na)
		_, eb := fmt.Sscan(fb[i], &nb)
		if ea == nil && eb == nil {
			return na < nb
		}
		return fa[i] < fb[i]
	}
	return len(fa) < len(fb)
}

// ModuleName normalises a module name the way modprobe does: no directory,
// no .ko suffix, '-' and '_' equivalent.
func ModuleName(s string) string {
	s = filepath.Base(s)
	s = strings.TrimSuffix(s, ".ko")
	return strings.ReplaceAll(s, "-", "_")
}

// ModuleClosure returns the module files (relative to ModulesDir) needed to
// load the named modules, dependencies before dependants, each once. Built-in
// modules need no file and are left out.
func (k Kernel) ModuleClosure(names []string) ([]string, error) {
	deps, err := readModulesDep(filepath.Join(k.ModulesDir, "modules.dep"))
	if err != nil {
		return nil, err
	}
	builtin := readBuiltin(filepath.Join(k.ModulesDir, "modules.builtin"))
	byName := make(map[string]string, len(deps))
	for path := range deps {
		byName[ModuleName(path)] = path
	}
	var order []string
	seen := map[string]bool{}
	var visit func(path string)
	visit = func(path string) {
		if seen[path] {
			return
		}
		seen[path] = true
		for _, d := range deps[path] {
			visit(d)
		}
		order = append(order, path)
	}
	for _, n := range names {
		name := ModuleName(n)
		path, ok := byName[name]
		if !ok {
			if builtin[name] {
				continue
			}
			return nil, fmt.Errorf("%w: %q in kernel %s", ErrUnknownModule, n, k.Version)
		}
		visit(path)
	}
	return order, nil
}

// readModulesDep parses modules.dep: "path: dep dep ...".
func readModulesDep(path string) (map[string][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("harness: modules.dep: %w", err)
	}
	defer f.Close()
	deps := map[string][]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(mod) == "" {
			continue
		}
		deps[strings.TrimSpace(mod)] = strings.Fields(rest)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("harness: modules.dep: %w", err)
	}
	return deps, nil
}

func readBuiltin(path string) map[string]bool {
	b, _ := os.ReadFile(path)
	out := map[string]bool{}
	for _, line := range strings.Fields(string(b)) {
		out[ModuleName(line)] = true
	}
	return out
}
