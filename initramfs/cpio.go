package initramfs

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
	// ErrCPIOPath means an archive path is not a clean absolute path.
	ErrCPIOPath = errors.New("cpio: bad archive path")
	// ErrCPIOConflict means two different things were put at one path.
	ErrCPIOConflict = errors.New("cpio: conflicting entries")
)

// Entry is one archive member. Mode carries the type bits of io/fs
// (fs.ModeDir, fs.ModeSymlink, fs.ModeDevice|fs.ModeCharDevice) and the
// permissions; Data is a file's contents or a symlink's target.
type Entry struct {
	Path         string
	Mode         fs.FileMode
	Data         []byte
	Major, Minor uint32
	// implicit marks a parent directory nobody asked for; an explicit Dir
	// may still set its mode.
	implicit bool
}

// Tree is the contents of an initramfs before it is written: a set of
// entries keyed by clean absolute path. Missing parents are created as 0755
// directories. Adding the same thing twice is fine; adding something else at
// a taken path is ErrCPIOConflict.
type Tree struct {
	entries map[string]*Entry
}

// NewTree returns an empty tree.
func NewTree() *Tree { return &Tree{entries: map[string]*Entry{}} }

// cpioPermBits are the mode bits an entry keeps besides its type.
const cpioPermBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// Dir adds a directory.
func (t *Tree) Dir(p string, perm fs.FileMode) error {
	return t.add(&Entry{Path: p, Mode: fs.ModeDir | perm&cpioPermBits})
}

// File adds a regular file with perm (setuid/setgid/sticky bits are kept).
func (t *Tree) File(p string, data []byte, perm fs.FileMode) error {
	return t.add(&Entry{Path: p, Mode: perm & cpioPermBits, Data: data})
}

// Symlink adds a symbolic link to target.
func (t *Tree) Symlink(p, target string) error {
	if target == "" {
		return fmt.Errorf("%w: symlink %s has an empty target", ErrCPIOPath, p)
	}
	return t.add(&Entry{Path: p, Mode: fs.ModeSymlink | 0o777, Data: []byte(target)})
}

// CharDev adds a character device node.
func (t *Tree) CharDev(p string, perm fs.FileMode, major, minor uint32) error {
	return t.add(&Entry{Path: p, Mode: fs.ModeDevice | fs.ModeCharDevice | perm.Perm(), Major: major, Minor: minor})
}

// Lookup returns the entry at p, if any.
func (t *Tree) Lookup(p string) (Entry, bool) {
	e, ok := t.entries[p]
	if !ok {
		return Entry{}, false
	}
	return *e, true
}

// Len is the number of entries (directories included).
func (t *Tree) Len() int { return len(t.entries) }

// Size is the sum of file and symlink data sizes.
func (t *Tree) Size() int {
	n := 0
	for _, e := range t.entries {
		n += len(e.Data)
	}
	return n
}

func cpioValidPath(p string) bool {
	return p != "/" && path.IsAbs(p) && path.Clean(p) == p && !strings.ContainsRune(p, 0)
}

func (t *Tree) add(e *Entry) error {
	if !cpioValidPath(e.Path) {
		return fmt.Errorf("%w: %q", ErrCPIOPath, e.Path)
	}
	if err := t.parents(path.Dir(e.Path)); err != nil {
		return err
	}
	old, ok := t.entries[e.Path]
	if !ok {
		t.entries[e.Path] = e
		return nil
	}
	if old.Mode.IsDir() && e.Mode.IsDir() {
		if old.implicit {
			old.Mode, old.implicit = e.Mode, false
		}
		return nil
	}
	if old.Mode == e.Mode && old.Major == e.Major && old.Minor == e.Minor && bytes.Equal(old.Data, e.Data) {
		return nil
	}
	return fmt.Errorf("%w: %s is already a %s", ErrCPIOConflict, e.Path, cpioKind(old.Mode))
}

// parents makes sure every directory up to and including dir exists.
func (t *Tree) parents(dir string) error {
	if dir == "/" {
		return nil
	}
	if old, ok := t.entries[dir]; ok {
		if !old.Mode.IsDir() {
			return fmt.Errorf("%w: %s is a %s, not a directory", ErrCPIOConflict, dir, cpioKind(old.Mode))
		}
		return nil
	}
	if err := t.parents(path.Dir(dir)); err != nil {
		return err
	}
	t.entries[dir] = &Entry{Path: dir, Mode: fs.ModeDir | 0o755, implicit: true}
	return nil
}

func cpioKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "file"
}

// Paths returns every path, sorted as the archive stores them.
func (t *Tree) Paths() []string {
	ps := make([]string, 0, len(t.entries))
	for p := range t.entries {
		ps = append(ps, p)
	}
	// Byte order puts a directory before everything under it ("a" < "a/...").
	slices.Sort(ps)
	return ps
}

// newc mode bits (see cpio(5)).
const (
	cpioModeDir     = 0o040000
	cpioModeFile    = 0o100000
	cpioModeSymlink = 0o120000
	cpioModeChar    = 0o020000
	cpioTrailer     = "TRAILER!!!"
)

func cpioModeBits(m fs.FileMode) uint32 {
	bits := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	switch {
	case m.IsDir():
		bits |= cpioModeDir
	case m&fs.ModeSymlink != 0:
		bits |= cpioModeSymlink
	case m&fs.ModeCharDevice != 0:
		bits |= cpioModeChar
	default:
		bits |= cpioModeFile
	}
	return bits
}

// WriteCPIO writes the tree as a reproducible newc archive: entries sorted by
// path, inode numbers 1.. in that order, owner root, mtime 0, nlink 1 (2 for
// directories, so the kernel never takes a file for a hard link), then the
// trailer. Names are stored relative ("dev/console"), as the kernel expects.
func (t *Tree) WriteCPIO(w io.Writer) (int64, error) {
	cw := &cpioCountingWriter{w: bufio.NewWriterSize(w, 1<<16)}
	for i, p := range t.Paths() {
		e := t.entries[p]
		nlink := uint32(1)
		if e.Mode.IsDir() {
			nlink = 2
		}
		cpioRecord(cw, uint32(i+1), cpioModeBits(e.Mode), nlink, e.Major, e.Minor, strings.TrimPrefix(p, "/"), e.Data)
	}
	cpioRecord(cw, 0, 0, 1, 0, 0, cpioTrailer, nil)
	if cw.err == nil {
		cw.err = cw.w.(*bufio.Writer).Flush()
	}
	return cw.n, cw.err
}

func cpioRecord(cw *cpioCountingWriter, ino, mode, nlink, major, minor uint32, name string, data []byte) {
	fmt.Fprintf(cw, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, len(data), 0, 0, major, minor, len(name)+1, 0)
	io.WriteString(cw, name)
	cw.Write([]byte{0})
	cw.pad()
	cw.Write(data)
	cw.pad()
}

// cpioCountingWriter remembers the first error and the offset, for padding.
type cpioCountingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *cpioCountingWriter) Write(b []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	c.err = err
	return n, err
}

// pad aligns to 4 bytes, as newc requires after the name and after the data.
func (c *cpioCountingWriter) pad() {
	if r := c.n % 4; r != 0 {
		c.Write(make([]byte, 4-r))
	}
}
