package harness

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"
)

// ErrBadArchivePath means a file name would escape the archive root.
var ErrBadArchivePath = errors.New("harness: bad archive path")

// GuestModulesList is the file the guest package reads to load modules
// (scripts/guest.ModulesList, without the leading slash).
const GuestModulesList = "etc/harness/modules"

// Initramfs collects files for a small guest initramfs and writes them as a
// reproducible newc cpio: names sorted, parents created, owners and times
// zeroed, inode numbers assigned in order.
type Initramfs struct {
	files   map[string]entry
	modules []string // archive paths, in load order
}

type entry struct {
	data []byte
	mode uint64
}

// NewInitramfs returns an empty archive.
func NewInitramfs() *Initramfs {
	return &Initramfs{files: map[string]entry{}}
}

// AddFile puts data at name (relative to /) with the given permissions.
func (a *Initramfs) AddFile(name string, data []byte, perm os.FileMode) error {
	clean, err := archivePath(name)
	if err != nil {
		return err
	}
	a.files[clean] = entry{data: data, mode: cpio.S_IFREG | uint64(perm.Perm())}
	return nil
}

// AddHostFile copies the host file src to name.
func (a *Initramfs) AddHostFile(name, src string, perm os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("harness: initramfs %s: %w", name, err)
	}
	return a.AddFile(name, data, perm)
}

// AddModules adds the named modules and their dependencies from k, and the
// list the guest loads them from (GuestModulesList).
func (a *Initramfs) AddModules(k Kernel, names ...string) error {
	files, err := k.ModuleClosure(names)
	if err != nil {
		return err
	}
	for _, rel := range files {
		name := path.Join("lib/modules", k.Version, filepath.ToSlash(rel))
		if _, dup := a.files[name]; dup {
			continue
		}
		if err := a.AddHostFile(name, filepath.Join(k.ModulesDir, rel), 0o644); err != nil {
			return err
		}
		a.modules = append(a.modules, "/"+name)
	}
	list := strings.Join(a.modules, "\n") + "\n"
	return a.AddFile(GuestModulesList, []byte(list), 0o644)
}

func archivePath(name string) (string, error) {
	clean := path.Clean("/" + filepath.ToSlash(name))
	if clean == "/" || strings.Contains(name, "\x00") {
		return "", fmt.Errorf("%w: %q", ErrBadArchivePath, name)
	}
	return strings.TrimPrefix(clean, "/"), nil
}

// WriteTo writes the archive (with trailer) to w.
func (a *Initramfs) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	names := map[string]cpio.Record{}
	for name, e := range a.files {
		names[name] = cpio.StaticRecord(e.data, cpio.Info{Name: name, Mode: e.mode, NLink: 1})
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if _, ok := names[dir]; !ok {
				names[dir] = cpio.Directory(dir, 0o755)
			}
		}
	}
	// Standard device nodes so early writes to the console work before
	// devtmpfs is mounted.
	for _, r := range []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.CharDev("dev/null", 0o666, 1, 3),
	} {
		if _, ok := names[r.Name]; !ok {
			names[r.Name] = r
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	rw := cpio.Newc.Writer(cw)
	for i, n := range sorted {
		r := cpio.MakeReproducible(names[n])
		r.Ino = uint64(i + 1)
		if r.NLink == 0 {
			r.NLink = 1
		}
		if err := rw.WriteRecord(r); err != nil {
			return cw.n, fmt.Errorf("harness: cpio %s: %w", n, err)
		}
	}
	if err := cpio.WriteTrailer(rw); err != nil {
		return cw.n, fmt.Errorf("harness: cpio trailer: %w", err)
	}
	return cw.n, nil
}

// WriteFile writes the archive to a file.
func (a *Initramfs) WriteFile(dst string) error {
	var buf bytes.Buffer
	if _, err := a.WriteTo(&buf); err != nil {
		return err
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("harness: write initramfs: %w", err)
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
