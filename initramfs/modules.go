package initramfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"inert/boot/kmod"
	"inert/kernel"
)

var (
	// ErrModuleMissing means a module the manifest names, or one its
	// closure needs, is not in the kernel's module tree.
	ErrModuleMissing = errors.New("initramfs: kernel module missing")
	// ErrFirmwareMissing means a firmware file the manifest names is not on
	// the build host.
	ErrFirmwareMissing = errors.New("initramfs: firmware file missing")
)

// ModulesDirIn is where a kernel's modules live inside the image.
func ModulesDirIn(version string) string { return "/lib/modules/" + version }

// AddModules puts the named modules of kernel k into t with everything they
// need to load at boot: their dependency and soft-dependency closure (the
// same kmod.Index the image loads with decides it), and modules.dep,
// modules.alias and modules.softdep filtered to the included modules, plus
// modules.builtin whole, so that boot-time lookups and coldplug see a small
// tree that is consistent with itself. It returns the included modules in
// load order. A name that is neither a module, a built-in nor an alias, or a
// module file that is missing, is ErrModuleMissing naming it.
func AddModules(t *Tree, k kernel.Kernel, names []string) ([]string, error) {
	ix, err := kmod.ReadIndex(os.DirFS(k.ModulesDir))
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.Version, err)
	}
	var want []string
	for _, n := range names {
		mods, err := ix.Resolve(n)
		if err != nil {
			return nil, fmt.Errorf("%w: %q is not a module of kernel %s (%v)", ErrModuleMissing, n, k.Version, err)
		}
		want = append(want, mods...)
	}
	order, err := ix.Closure(want)
	if err != nil {
		return nil, fmt.Errorf("%w: kernel %s: %v", ErrModuleMissing, k.Version, err)
	}
	included := map[string]bool{}
	dst := ModulesDirIn(k.Version)
	for _, m := range order {
		included[m] = true
		rel := ix.Path(m)
		if !filepath.IsLocal(rel) {
			return nil, fmt.Errorf("%w: %s: path %q leaves the module tree", ErrModuleMissing, m, rel)
		}
		b, err := os.ReadFile(filepath.Join(k.ModulesDir, rel))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrModuleMissing, m, err)
		}
		if err := t.File(path.Join(dst, rel), b, 0o644); err != nil {
			return nil, err
		}
	}
	// Each index file keeps only the lines about included modules, in the
	// order depmod wrote them.
	filters := map[string]func(line string) bool{
		"modules.dep": func(line string) bool {
			file, _, _ := strings.Cut(line, ":")
			m, _ := kmod.ModuleName(strings.TrimSpace(file))
			return included[m]
		},
		"modules.alias":   func(line string) bool { return modulesFieldIncluded(line, 2, included) },
		"modules.softdep": func(line string) bool { return modulesFieldIncluded(line, 1, included) },
		"modules.builtin": func(string) bool { return true },
	}
	for _, name := range kmod.IndexFileNames {
		src := filepath.Join(k.ModulesDir, name)
		b, err := os.ReadFile(src)
		if errors.Is(err, os.ErrNotExist) && name != "modules.dep" {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("kernel %s: %w", k.Version, err)
		}
		if err := t.File(path.Join(dst, name), modulesFilter(b, filters[name]), 0o644); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// modulesFieldIncluded reports whether the i-th field of an index line names
// an included module.
func modulesFieldIncluded(line string, i int, included map[string]bool) bool {
	f := strings.Fields(line)
	return len(f) > i && included[kmod.Normalize(f[i])]
}

// modulesFilter keeps comment lines and the lines keep accepts.
func modulesFilter(b []byte, keep func(string) bool) []byte {
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, len(b)+1)
	for sc.Scan() {
		line := sc.Text()
		if t := strings.TrimSpace(line); t == "" || t[0] == '#' || keep(line) {
			out.WriteString(line)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

// AddFirmware copies each named firmware file (relative to firmwareRoot,
// normally /lib/firmware) to /lib/firmware/<name>, following symlinks on the
// host. A missing file, or a name that is not a clean relative path, is
// ErrFirmwareMissing naming it.
func AddFirmware(t *Tree, firmwareRoot string, names []string) error {
	for _, n := range names {
		if !filepath.IsLocal(n) || path.Clean(n) != n {
			return fmt.Errorf("%w: %q is not a clean relative path", ErrFirmwareMissing, n)
		}
		b, err := os.ReadFile(filepath.Join(firmwareRoot, n))
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrFirmwareMissing, n, err)
		}
		if err := t.File(path.Join("/lib/firmware", n), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
