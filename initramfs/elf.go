package initramfs

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

var (
	// ErrNotELF means a binary to copy is not an ELF file for this machine.
	ErrNotELF = errors.New("initramfs: not an ELF executable")
	// ErrLibraryMissing means a DT_NEEDED library was found nowhere.
	ErrLibraryMissing = errors.New("initramfs: shared library not found")
	// ErrNotStatic means /init has an interpreter: it would not start
	// before anything else is there.
	ErrNotStatic = errors.New("initramfs: init must be a static binary")
)

// ELFDefaultLibDirs is where libraries are looked for after the object's own
// DT_RUNPATH (or DT_RPATH): Debian's multiarch directories first, as its
// dynamic loader does.
var ELFDefaultLibDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

// ELFClosure returns the interpreter (PT_INTERP) and shared libraries
// (DT_NEEDED, recursively) a dynamically linked binary needs, as absolute
// paths in the order first needed. Paths are looked up under root (the build
// host is "/"); the returned paths are those inside root, which is where they
// go in the image. A static binary needs nothing.
func ELFClosure(root, binary string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	// The loader satisfies a DT_NEEDED name from an object it already has
	// when the name is that object's soname (libc needs ld-linux by name).
	loaded := map[string]bool{}
	// queue holds absolute paths (inside root) of objects still to inspect.
	queue := []string{binary}
	for len(queue) > 0 {
		obj := queue[0]
		queue = queue[1:]
		f, err := elfOpen(filepath.Join(root, obj))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", obj, err)
		}
		interp, needed, searchDirs, err := elfDynamic(f, obj)
		if sonames, _ := f.DynString(elf.DT_SONAME); len(sonames) > 0 {
			loaded[sonames[0]] = true
		}
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", obj, err)
		}
		if interp != "" && !seen[interp] {
			if _, err := os.Stat(filepath.Join(root, interp)); err != nil {
				return nil, fmt.Errorf("%w: interpreter %s of %s", ErrLibraryMissing, interp, obj)
			}
			seen[interp] = true
			out = append(out, interp)
			loaded[path.Base(interp)] = true
			if soname := elfSoname(filepath.Join(root, interp)); soname != "" {
				loaded[soname] = true
			}
		}
		for _, lib := range needed {
			if loaded[lib] {
				continue
			}
			p, err := elfFind(root, lib, searchDirs, f.Class, f.Machine)
			if err != nil {
				return nil, fmt.Errorf("%w: %s needed by %s", err, lib, obj)
			}
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
				queue = append(queue, p)
			}
		}
	}
	return out, nil
}

func elfOpen(p string) (*elf.File, error) {
	f, err := elf.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", ErrNotELF, err)
	}
	if f.Machine != elf.EM_X86_64 || f.Class != elf.ELFCLASS64 {
		f.Close()
		return nil, fmt.Errorf("%w: %v %v, want x86-64", ErrNotELF, f.Class, f.Machine)
	}
	return f, nil
}

// elfSoname returns an object's DT_SONAME, or "".
func elfSoname(p string) string {
	f, err := elf.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	if s, _ := f.DynString(elf.DT_SONAME); len(s) > 0 {
		return s[0]
	}
	return ""
}

// elfMaxInterp bounds PT_INTERP (PATH_MAX), so a hostile header cannot make
// us allocate its claimed size.
const elfMaxInterp = 4096

// elfInterp returns PT_INTERP, or "" for a static binary.
func elfInterp(f *elf.File) (string, error) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		if p.Filesz == 0 || p.Filesz > elfMaxInterp {
			return "", fmt.Errorf("%w: PT_INTERP of %d bytes", ErrNotELF, p.Filesz)
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return "", fmt.Errorf("%w: reading PT_INTERP: %v", ErrNotELF, err)
		}
		interp := strings.TrimRight(string(b), "\x00")
		if !path.IsAbs(interp) {
			return "", fmt.Errorf("%w: relative interpreter %q", ErrNotELF, interp)
		}
		return path.Clean(interp), nil
	}
	return "", nil
}

// elfDynamic reads what the loader uses: the interpreter, DT_NEEDED, and
// the object's own search path (DT_RUNPATH, else DT_RPATH) with $ORIGIN
// expanded to obj's directory.
func elfDynamic(f *elf.File, obj string) (interp string, needed, dirs []string, err error) {
	if interp, err = elfInterp(f); err != nil {
		return "", nil, nil, err
	}
	if needed, err = f.ImportedLibraries(); err != nil {
		return "", nil, nil, fmt.Errorf("%w: DT_NEEDED: %v", ErrNotELF, err)
	}
	paths, _ := f.DynString(elf.DT_RUNPATH)
	if len(paths) == 0 {
		paths, _ = f.DynString(elf.DT_RPATH)
	}
	for _, list := range paths {
		for _, d := range strings.Split(list, ":") {
			d = strings.ReplaceAll(strings.ReplaceAll(d, "${ORIGIN}", "$ORIGIN"), "$ORIGIN", path.Dir(obj))
			if path.IsAbs(d) {
				dirs = append(dirs, path.Clean(d))
			}
		}
	}
	return interp, needed, append(dirs, ELFDefaultLibDirs...), nil
}

// elfFind looks for lib in dirs under root, skipping files of another class
// or machine, as the loader does.
func elfFind(root, lib string, dirs []string, class elf.Class, machine elf.Machine) (string, error) {
	if strings.Contains(lib, "/") {
		if !path.IsAbs(lib) {
			return "", fmt.Errorf("%w: relative library path", ErrLibraryMissing)
		}
		dirs, lib = []string{path.Dir(lib)}, path.Base(lib)
	}
	for _, d := range dirs {
		p := path.Join(d, lib)
		f, err := elf.Open(filepath.Join(root, p))
		if err != nil {
			continue
		}
		ok := f.Class == class && f.Machine == machine
		f.Close()
		if ok {
			return p, nil
		}
	}
	return "", ErrLibraryMissing
}

// AddELF copies the binary at host path p (inside root) to the same path in
// t, with its interpreter and libraries. Symlinks are resolved on the host:
// the image gets the real file's bytes under the path that was asked for,
// so the loader finds what ldd would.
func AddELF(t *Tree, root, p string) ([]string, error) {
	if !path.IsAbs(p) {
		return nil, fmt.Errorf("%w: %q is not an absolute path", ErrNotELF, p)
	}
	libs, err := ELFClosure(root, p)
	if err != nil {
		return nil, err
	}
	for _, q := range append([]string{p}, libs...) {
		full := filepath.Join(root, q)
		st, err := os.Stat(full)
		if err != nil {
			return nil, err
		}
		b, err := os.ReadFile(full)
		if err != nil {
			return nil, err
		}
		if err := t.File(q, b, st.Mode().Perm()); err != nil {
			return nil, err
		}
	}
	return libs, nil
}
