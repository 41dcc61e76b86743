package kmod

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
)

var (
	// ErrNoModule means a name is neither a module in modules.dep, a built-in
	// module, nor an alias of one.
	ErrNoModule = errors.New("no such kernel module")
	// ErrIndex means modules.dep, modules.alias or modules.builtin is
	// missing, too large or malformed.
	ErrIndex = errors.New("bad kernel module index")
)

// maxIndexBytes caps each index file; Debian's full modules.alias is ~1.3 MB.
const maxIndexBytes = 32 << 20

// Index is what one module tree says about its modules. Names are normalised
// ('-' becomes '_'), as the kernel itself names modules.
type Index struct {
	// paths maps a module name to its file, relative to the module tree.
	paths map[string]string
	// deps maps a module name to its dependencies in modules.dep order
	// (depmod lists the deepest dependency last).
	deps    map[string][]string
	builtin map[string]bool
	// pre and post are soft dependencies (modules.softdep): names or aliases
	// to load before and after a module when they exist. ext4 needs its
	// crc32c this way, and an initramfs has no modprobe for the kernel to
	// call back.
	pre, post map[string][]string
	aliases   []alias
	// byBus indexes aliases by the literal text before the first ':' so that
	// a modalias is only matched against patterns of its own bus.
	byBus map[string][]int
	// anyBus are aliases whose bus part is itself a pattern.
	anyBus []int
}

type alias struct {
	pattern string
	module  string
}

// Normalize returns the kernel's name for a module: '-' becomes '_'.
func Normalize(name string) string { return strings.ReplaceAll(name, "-", "_") }

// ModuleName derives a module name from a module file path such as
// kernel/drivers/usb/storage/usb-storage.ko(.xz|.zst|.gz): usb_storage.
func ModuleName(p string) (string, bool) {
	base := path.Base(p)
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(base, ext) && len(base) > len(ext) {
			return Normalize(strings.TrimSuffix(base, ext)), true
		}
	}
	return "", false
}

// IndexFiles are the contents of a module tree's index files.
type IndexFiles struct {
	Dep, Alias, Builtin, Softdep []byte
}

// IndexFileNames are the files ReadIndex reads; only modules.dep is required.
var IndexFileNames = []string{"modules.dep", "modules.alias", "modules.builtin", "modules.softdep"}

// ReadIndex reads the index files of the module tree fsys (the directory
// lib/modules/<release>). modules.dep is required; a tree without the others
// has no aliases, built-ins or soft dependencies.
func ReadIndex(fsys fs.FS) (*Index, error) {
	var files IndexFiles
	for i, dst := range []*[]byte{&files.Dep, &files.Alias, &files.Builtin, &files.Softdep} {
		b, err := readCapped(fsys, IndexFileNames[i], i == 0)
		if err != nil {
			return nil, err
		}
		*dst = b
	}
	return ParseIndex(files)
}

func readCapped(fsys fs.FS, name string, required bool) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		if !required && errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: %v", ErrIndex, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxIndexBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", ErrIndex, name, err)
	}
	if len(b) > maxIndexBytes {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrIndex, name, maxIndexBytes)
	}
	return b, nil
}

// ParseIndex builds an Index from the index files' contents.
func ParseIndex(files IndexFiles) (*Index, error) {
	ix := &Index{
		paths:   map[string]string{},
		deps:    map[string][]string{},
		builtin: map[string]bool{},
		pre:     map[string][]string{},
		post:    map[string][]string{},
		byBus:   map[string][]int{},
	}
	for _, step := range []struct {
		parse func([]byte) error
		b     []byte
	}{{ix.parseDep, files.Dep}, {ix.parseBuiltin, files.Builtin}, {ix.parseAlias, files.Alias}, {ix.parseSoftdep, files.Softdep}} {
		if err := step.parse(step.b); err != nil {
			return nil, err
		}
	}
	return ix, nil
}

func eachLine(b []byte, fn func(no int, line string) error) error {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, maxIndexBytes)
	for no := 1; sc.Scan(); no++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if err := fn(no, line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrIndex, err)
	}
	return nil
}

func (ix *Index) parseDep(b []byte) error {
	return eachLine(b, func(no int, line string) error {
		file, rest, ok := strings.Cut(line, ":")
		name, named := ModuleName(file)
		if !ok || !named {
			return fmt.Errorf("%w: modules.dep line %d: want \"path.ko: deps\"", ErrIndex, no)
		}
		if _, dup := ix.paths[name]; dup {
			return fmt.Errorf("%w: modules.dep line %d: module %s listed twice", ErrIndex, no, name)
		}
		var deps []string
		for _, d := range strings.Fields(rest) {
			dn, ok := ModuleName(d)
			if !ok {
				return fmt.Errorf("%w: modules.dep line %d: dependency %q is not a module file", ErrIndex, no, d)
			}
			deps = append(deps, dn)
		}
		ix.paths[name] = file
		ix.deps[name] = deps
		return nil
	})
}

func (ix *Index) parseBuiltin(b []byte) error {
	return eachLine(b, func(no int, line string) error {
		name, ok := ModuleName(line)
		if !ok {
			return fmt.Errorf("%w: modules.builtin line %d: %q is not a module file", ErrIndex, no, line)
		}
		ix.builtin[name] = true
		return nil
	})
}

func (ix *Index) parseAlias(b []byte) error {
	return eachLine(b, func(no int, line string) error {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "alias" {
			return fmt.Errorf("%w: modules.alias line %d: want \"alias PATTERN MODULE\"", ErrIndex, no)
		}
		i := len(ix.aliases)
		ix.aliases = append(ix.aliases, alias{pattern: f[1], module: Normalize(f[2])})
		bus, _, hasBus := strings.Cut(f[1], ":")
		if hasBus && !strings.ContainsAny(bus, `*?[\`) {
			ix.byBus[bus] = append(ix.byBus[bus], i)
		} else {
			ix.anyBus = append(ix.anyBus, i)
		}
		return nil
	})
}

// parseSoftdep reads "softdep MODULE pre: A B post: C" lines. As in kmod,
// names before any "pre:" or "post:" are ignored and only the first line for
// a module counts (modprobe agrees, so the image and a reference system load
// the same set).
func (ix *Index) parseSoftdep(b []byte) error {
	seen := map[string]bool{}
	return eachLine(b, func(no int, line string) error {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "softdep" {
			return fmt.Errorf("%w: modules.softdep line %d: want \"softdep MODULE pre: ... post: ...\"", ErrIndex, no)
		}
		mod := Normalize(f[1])
		if seen[mod] {
			return nil
		}
		seen[mod] = true
		var into map[string][]string
		for _, tok := range f[2:] {
			switch tok {
			case "pre:":
				into = ix.pre
			case "post:":
				into = ix.post
			default:
				if into != nil {
					into[mod] = append(into[mod], tok)
				}
			}
		}
		return nil
	})
}

// Softdeps returns the soft dependencies of a module as listed (names or
// aliases, which may not exist in this tree).
func (ix *Index) Softdeps(name string) (pre, post []string) {
	n := Normalize(name)
	return slices.Clone(ix.pre[n]), slices.Clone(ix.post[n])
}

// Has reports whether name is a loadable module of this tree.
func (ix *Index) Has(name string) bool {
	_, ok := ix.paths[Normalize(name)]
	return ok
}

// Builtin reports whether name is built into the kernel.
func (ix *Index) Builtin(name string) bool { return ix.builtin[Normalize(name)] }

// Path returns the module's file relative to the module tree, or "".
func (ix *Index) Path(name string) string { return ix.paths[Normalize(name)] }

// Deps returns the module's dependencies as modules.dep lists them.
func (ix *Index) Deps(name string) []string { return slices.Clone(ix.deps[Normalize(name)]) }

// Modules returns every loadable module name, sorted.
func (ix *Index) Modules() []string {
	names := make([]string, 0, len(ix.paths))
	for n := range ix.paths {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Resolve turns a name from a manifest or a command line into module names,
// the way modprobe looks it up: a module of modules.dep, else a built-in
// (returned with no modules: it is already present), else an alias. An alias
// may name several modules, or modules that are built in; only loadable ones
// are returned. Nothing found is ErrNoModule.
func (ix *Index) Resolve(name string) ([]string, error) {
	n := Normalize(name)
	if _, ok := ix.paths[n]; ok {
		return []string{n}, nil
	}
	if ix.builtin[n] {
		return nil, nil
	}
	// Alias names keep their '-' (fs-vfat, crypto-aes), so match the name as given.
	mods, found := ix.matchAliases(name)
	if !found {
		return nil, fmt.Errorf("%w: %s", ErrNoModule, name)
	}
	return mods, nil
}

// Match returns the loadable modules whose alias patterns match a device
// modalias, sorted and without duplicates.
func (ix *Index) Match(modalias string) []string {
	mods, _ := ix.matchAliases(modalias)
	slices.Sort(mods)
	return mods
}

// matchAliases returns the loadable modules matching s in modules.alias
// order (modprobe's), and whether any alias, loadable or built in, matched.
func (ix *Index) matchAliases(s string) ([]string, bool) {
	candidates := slices.Clone(ix.anyBus)
	if bus, _, ok := strings.Cut(s, ":"); ok {
		candidates = append(candidates, ix.byBus[bus]...)
		slices.Sort(candidates)
	}
	var mods []string
	found := false
	for _, i := range candidates {
		a := ix.aliases[i]
		if !globMatch(a.pattern, s) {
			continue
		}
		if _, ok := ix.paths[a.module]; ok {
			found = true
			if !slices.Contains(mods, a.module) {
				mods = append(mods, a.module)
			}
		} else if ix.builtin[a.module] {
			found = true
		}
	}
	return mods, found
}

// Closure returns names and all their dependencies in an order the kernel
// can load them, each once: a module's dependencies (each with its own soft
// dependencies), its "pre" soft dependencies, the module, then its "post"
// soft dependencies. This is modprobe's order. Names must be loadable
// modules (see Resolve); an unknown one is ErrNoModule, and a dependency
// missing from modules.dep is ErrIndex. Soft dependencies that do not exist
// in the tree are left out, as modprobe does.
func (ix *Index) Closure(names []string) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(n string, from string) error
	soft := func(list []string, from string) error {
		for _, s := range list {
			mods, err := ix.Resolve(s)
			if err != nil {
				continue
			}
			for _, m := range mods {
				if state[m] != 0 {
					continue // done, or a soft cycle: soft edges may be dropped
				}
				if err := visit(m, from); err != nil {
					return err
				}
			}
		}
		return nil
	}
	visit = func(n, from string) error {
		switch state[n] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("%w: dependency cycle through %s", ErrIndex, n)
		}
		deps, ok := ix.deps[n]
		if !ok {
			if from == "" {
				return fmt.Errorf("%w: %s", ErrNoModule, n)
			}
			return fmt.Errorf("%w: %s depends on %s, which is not in modules.dep", ErrIndex, from, n)
		}
		state[n] = 1
		// depmod lists the deepest dependency last, so walking the list
		// backwards loads in the same order modprobe does.
		for i := len(deps) - 1; i >= 0; i-- {
			if err := visit(deps[i], n); err != nil {
				return err
			}
		}
		if err := soft(ix.pre[n], n); err != nil {
			return err
		}
		state[n] = 2
		order = append(order, n)
		return soft(ix.post[n], n)
	}
	for _, n := range names {
		if err := visit(Normalize(n), ""); err != nil {
			return nil, err
		}
	}
	return order, nil
}
