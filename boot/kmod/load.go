package kmod

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

var (
	// ErrLoad wraps a module the kernel refused; the errno is wrapped too,
	// so errors.Is(err, unix.ENODEV) tells "no such hardware".
	ErrLoad = errors.New("loading kernel module failed")
	// ErrDependency means a module was not tried because a dependency failed.
	ErrDependency = errors.New("kernel module dependency failed")
)

// Loader inserts one module into the running kernel.
type Loader interface {
	// Init loads the module image open in f (f.Name() is its path). A module
	// that is already loaded returns an error satisfying
	// errors.Is(err, unix.EEXIST).
	Init(f *os.File) error
}

// FinitLoader is the production Loader: finit_module(2) with no parameters.
type FinitLoader struct{}

// Init calls finit_module, asking the kernel to decompress compressed images.
func (FinitLoader) Init(f *os.File) error {
	flags := 0
	if n := f.Name(); strings.HasSuffix(n, ".xz") || strings.HasSuffix(n, ".zst") || strings.HasSuffix(n, ".gz") {
		flags = unix.MODULE_INIT_COMPRESSED_FILE
	}
	return unix.FinitModule(int(f.Fd()), "", flags)
}

// Tree loads modules from the module tree <Root>/lib/modules/<Release> into
// the running kernel. Keep one Tree for a boot: it reads the index once and
// remembers which modules it has tried, so Coldplug can run again whenever new
// devices appear without retrying the same failures.
type Tree struct {
	// Root is the filesystem root ("/" in the image, a temp dir in tests).
	Root string
	// Release is the kernel release; empty means uname -r.
	Release string
	// Loader inserts modules; nil means FinitLoader.
	Loader Loader
	// Logf, when set, hears about soft dependencies the kernel refused
	// (crc32c_intel on a CPU without SSE4.2): they are not errors, because
	// the module that wanted them works without them.
	Logf func(format string, args ...any)

	mu    sync.Mutex
	index *Index
	tried map[string]error // nil value: loaded or already present
}

// Load loads the named modules (see Tree.Load) from the tree under root for
// the running kernel.
func Load(ctx context.Context, root string, names []string) ([]string, error) {
	return (&Tree{Root: root}).Load(ctx, names)
}

// Coldplug loads the modules matching the devices now in sysfs (see
// Tree.Coldplug). Use a Tree to call it repeatedly.
func Coldplug(ctx context.Context, root string) ([]string, error) {
	return (&Tree{Root: root}).Coldplug(ctx)
}

// Dir is the module tree directory, <Root>/lib/modules/<release>.
func (t *Tree) Dir() (string, error) {
	rel := t.Release
	if rel == "" {
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			return "", fmt.Errorf("uname: %w", err)
		}
		rel = unix.ByteSliceToString(u.Release[:])
	}
	if rel == "" || strings.ContainsAny(rel, "/\x00") || rel == "." || rel == ".." {
		return "", fmt.Errorf("%w: kernel release %q", ErrIndex, rel)
	}
	return filepath.Join(t.Root, "lib", "modules", rel), nil
}

// Index reads (once) and returns the tree's module index.
func (t *Tree) Index() (*Index, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.indexLocked()
}

func (t *Tree) indexLocked() (*Index, error) {
	if t.index != nil {
		return t.index, nil
	}
	dir, err := t.Dir()
	if err != nil {
		return nil, err
	}
	ix, err := ReadIndex(os.DirFS(dir))
	if err != nil {
		return nil, fmt.Errorf("module tree %s: %w", dir, err)
	}
	t.index = ix
	return ix, nil
}

// Load resolves each name (a module, a built-in, or an alias; '-' and '_'
// are the same) and loads its dependency closure in dependency order.
// Built-in and already loaded modules count as present. It returns the
// modules it inserted, in order. An unknown name is ErrNoModule and nothing
// is loaded; a module the kernel refuses is ErrLoad (its dependants are
// ErrDependency) and the others are still loaded: all failures are joined.
// Soft dependencies (modules.softdep) are loaded first where modprobe would,
// but their failures only go to Logf.
func (t *Tree) Load(ctx context.Context, names []string) ([]string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ix, err := t.indexLocked()
	if err != nil {
		return nil, err
	}
	var want []string
	for _, n := range names {
		mods, err := ix.Resolve(n)
		if err != nil {
			return nil, err
		}
		want = append(want, mods...)
	}
	return t.loadLocked(ctx, ix, want, true)
}

// loadLocked loads the closure of mods. retry says whether modules that
// failed before in this Tree are tried again.
func (t *Tree) loadLocked(ctx context.Context, ix *Index, mods []string, retry bool) ([]string, error) {
	order, err := ix.Closure(mods)
	if err != nil {
		return nil, err
	}
	if t.tried == nil {
		t.tried = map[string]error{}
	}
	dir, err := t.Dir()
	if err != nil {
		return nil, err
	}
	// Only the requested modules and their hard dependencies can fail a load;
	// the rest of the closure is there as soft dependencies.
	hard := map[string]bool{}
	for _, m := range mods {
		hard[m] = true
		for _, d := range ix.deps[m] {
			hard[d] = true
		}
	}
	var loaded []string
	var errs []error
	fail := func(m string, err error) {
		t.tried[m] = err
		if hard[m] {
			errs = append(errs, err)
		} else if t.Logf != nil {
			t.Logf("kmod: soft dependency: %v", err)
		}
	}
	for _, m := range order {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		// Present modules are done; failures are retried only when a
		// caller asks for the module (or needs it) again.
		if prev, seen := t.tried[m]; seen && (prev == nil || !retry || !hard[m]) {
			continue
		}
		if dep := t.failedDep(ix, m); dep != "" {
			fail(m, fmt.Errorf("%w: %s needs %s", ErrDependency, m, dep))
			continue
		}
		if t.liveInSysfs(m) {
			t.tried[m] = nil
			continue
		}
		inserted, err := t.insert(dir, ix, m)
		if err != nil {
			fail(m, err)
			continue
		}
		t.tried[m] = nil
		if inserted {
			loaded = append(loaded, m)
		}
	}
	return loaded, errors.Join(errs...)
}

// failedDep names a dependency of m that failed to load, if any.
func (t *Tree) failedDep(ix *Index, m string) string {
	for _, d := range ix.deps[m] {
		if err, seen := t.tried[d]; seen && err != nil {
			return d
		}
	}
	return ""
}

// liveInSysfs reports whether the kernel already has m loaded; modprobe
// checks the same file.
func (t *Tree) liveInSysfs(m string) bool {
	b, err := os.ReadFile(filepath.Join(t.Root, "sys", "module", m, "initstate"))
	return err == nil && strings.TrimSpace(string(b)) == "live"
}

// insert loads one module file; EEXIST counts as present, not inserted.
func (t *Tree) insert(dir string, ix *Index, m string) (bool, error) {
	p := ix.paths[m]
	if filepath.IsAbs(p) || !filepath.IsLocal(p) {
		return false, fmt.Errorf("%w: %s: path %q leaves the module tree", ErrIndex, m, p)
	}
	f, err := os.Open(filepath.Join(dir, p))
	if err != nil {
		return false, fmt.Errorf("%w: %s: %w", ErrLoad, m, err)
	}
	defer f.Close()
	loader := t.Loader
	if loader == nil {
		loader = FinitLoader{}
	}
	if err := loader.Init(f); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return false, nil
		}
		return false, fmt.Errorf("%w: %s: %w", ErrLoad, m, err)
	}
	return true, nil
}
