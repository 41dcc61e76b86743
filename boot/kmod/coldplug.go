package kmod

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ErrSysfs means the device tree could not be walked (sysfs not mounted?).
var ErrSysfs = errors.New("cannot read sysfs devices")

// maxModalias caps one modalias file; real ones are well under 1 KiB.
const maxModalias = 4096

// Coldplug walks <Root>/sys/devices for modalias files, matches each against
// the alias patterns of modules.alias and loads every matching module that is
// in modules.dep, with its dependencies. It returns the modules it inserted.
// Run it again after new devices appear (a USB stick after xhci loads): it
// does not retry modules it already tried. Load failures are joined in the
// error; the other modules are still loaded.
func (t *Tree) Coldplug(ctx context.Context) ([]string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ix, err := t.indexLocked()
	if err != nil {
		return nil, err
	}
	aliases, err := Modaliases(os.DirFS(t.Root), "sys/devices")
	if err != nil {
		return nil, err
	}
	var want []string
	for _, a := range aliases {
		for _, m := range ix.Match(a) {
			if !slices.Contains(want, m) {
				want = append(want, m)
			}
		}
	}
	slices.Sort(want)
	return t.loadLocked(ctx, ix, want, false)
}

// Modaliases returns the distinct device modaliases found in modalias files
// under dir of fsys, sorted. Unreadable entries are skipped: sysfs has files
// that refuse reads, and a device that vanishes mid-walk is normal.
func Modaliases(fsys fs.FS, dir string) ([]string, error) {
	seen := map[string]bool{}
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil
		}
		if d.Name() != "modalias" || !d.Type().IsRegular() {
			return nil
		}
		if a := readModalias(fsys, p); a != "" {
			seen[a] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: walking %s: %w", ErrSysfs, dir, err)
	}
	out := make([]string, 0, len(seen))
	for a := range seen {
		out = append(out, a)
	}
	slices.Sort(out)
	return out, nil
}

func readModalias(fsys fs.FS, p string) string {
	f, err := fsys.Open(filepath.ToSlash(p))
	if err != nil {
		return ""
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxModalias))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
