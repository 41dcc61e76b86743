package harness

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"inert/initramfs"
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
	perm os.FileMode
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
	a.files[clean] = entry{data: data, perm: perm.Perm()}
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

// WriteTo writes the archive (with trailer) to w, through the same
// reproducible newc writer the image build uses (package initramfs).
func (a *Initramfs) WriteTo(w io.Writer) (int64, error) {
	t := initramfs.NewTree()
	// Standard device nodes so early writes to the console work before
	// devtmpfs is mounted.
	if err := t.CharDev("/dev/console", 0o600, 5, 1); err != nil {
		return 0, err
	}
	if err := t.CharDev("/dev/null", 0o666, 1, 3); err != nil {
		return 0, err
	}
	for name, e := range a.files {
		if err := t.File("/"+name, e.data, e.perm); err != nil {
			return 0, fmt.Errorf("harness: cpio %s: %w", name, err)
		}
	}
	n, err := t.WriteCPIO(w)
	if err != nil {
		return n, fmt.Errorf("harness: cpio: %w", err)
	}
	return n, nil
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
