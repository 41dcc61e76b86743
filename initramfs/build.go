package initramfs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"inert/appliance"
	"inert/kernel"
)

var (
	// ErrPayloadMissing means a payload source named by the manifest is not
	// there, or a $VARIABLE in its path is unset.
	ErrPayloadMissing = errors.New("initramfs: payload missing")
	// ErrBuild marks other build refusals (no kernel for modules, a
	// special file in a payload directory, ...).
	ErrBuild = errors.New("initramfs: cannot build")
)

// Options say what goes into one initramfs.
type Options struct {
	// Manifest is the appliance manifest, byte for byte as it will be
	// measured; it is parsed strictly and a bad one fails the build.
	Manifest []byte
	// InitBinary is the static inert binary that becomes /init.
	InitBinary string
	// RepoRoot is what relative payload sources are relative to.
	RepoRoot string
	// Kernel provides the modules; it is required when the manifest names any.
	Kernel kernel.Kernel
	// Compression is zstd (the default when empty), gzip or none.
	Compression string
	// FirmwareRoot defaults to /lib/firmware; HostRoot, where manifest
	// binaries and their libraries are read, defaults to /.
	FirmwareRoot string
	HostRoot     string
	// Getenv expands $VARS in payload sources; nil means os.Getenv.
	Getenv func(string) string
}

// Result is a built initramfs.
type Result struct {
	// Archive is the compressed cpio, ready for the UKI's .initrd section.
	Archive []byte
	// SHA256 is the hex digest of Archive.
	SHA256 string
	// Files counts archive entries (directories and nodes included).
	Files int
	// Uncompressed is the size of the cpio before compression.
	Uncompressed int
	// Modules are the kernel modules included, in load order.
	Modules []string
}

// skeletonDirs exist in every image; PID 1 mounts over several of them.
var skeletonDirs = []struct {
	path string
	perm fs.FileMode
}{
	{"/dev", 0o755}, {"/proc", 0o555}, {"/sys", 0o555}, {"/run", 0o755},
	{"/tmp", 0o777 | fs.ModeSticky}, {"/etc", 0o755}, {"/etc/inert", 0o755},
	{"/var", 0o755}, {"/mnt", 0o755}, {"/usr/bin", 0o755}, {"/usr/sbin", 0o755},
	{"/usr/lib", 0o755},
}

// Build assembles the initramfs for one appliance: the skeleton, /dev/console
// and /dev/null (the kernel opens the console before /init runs), /init, the
// manifest at appliance.ManifestPath, the payload, kernel modules, firmware,
// and the manifest's host binaries with their shared libraries. The same
// inputs give the same bytes.
func Build(opts Options) (*Result, error) {
	m, err := appliance.ParseManifest(opts.Manifest)
	if err != nil {
		return nil, err
	}
	comp := opts.Compression
	if comp == "" {
		comp = CompressZstd
	}
	if _, err := Compress(comp, nil); err != nil {
		return nil, err
	}
	t := NewTree()
	for _, d := range skeletonDirs {
		if err := t.Dir(d.path, d.perm); err != nil {
			return nil, err
		}
	}
	// Device numbers are fixed by the kernel (Documentation/admin-guide/devices.txt).
	if err := t.CharDev("/dev/console", 0o600, 5, 1); err != nil {
		return nil, err
	}
	if err := t.CharDev("/dev/null", 0o666, 1, 3); err != nil {
		return nil, err
	}
	if err := buildInit(t, opts.InitBinary); err != nil {
		return nil, err
	}
	if err := t.File(appliance.ManifestPath, opts.Manifest, 0o444); err != nil {
		return nil, err
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	for _, p := range m.Payload {
		if err := buildPayload(t, opts.RepoRoot, p, getenv); err != nil {
			return nil, err
		}
	}
	var mods []string
	if len(m.Modules) > 0 {
		if opts.Kernel.ModulesDir == "" || opts.Kernel.Version == "" {
			return nil, fmt.Errorf("%w: the manifest names modules but no kernel was given", ErrBuild)
		}
		if mods, err = AddModules(t, opts.Kernel, m.Modules); err != nil {
			return nil, err
		}
	}
	fwRoot := opts.FirmwareRoot
	if fwRoot == "" {
		fwRoot = "/lib/firmware"
	}
	if err := AddFirmware(t, fwRoot, m.Firmware); err != nil {
		return nil, err
	}
	hostRoot := opts.HostRoot
	if hostRoot == "" {
		hostRoot = "/"
	}
	for _, b := range m.Binaries {
		if _, err := AddELF(t, hostRoot, b); err != nil {
			return nil, fmt.Errorf("binary %s: %w", b, err)
		}
	}
	var raw bytes.Buffer
	if _, err := t.WriteCPIO(&raw); err != nil {
		return nil, err
	}
	archive, err := Compress(comp, raw.Bytes())
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(archive)
	return &Result{
		Archive:      archive,
		SHA256:       hex.EncodeToString(sum[:]),
		Files:        t.Len(),
		Uncompressed: raw.Len(),
		Modules:      mods,
	}, nil
}

// buildInit adds /init after checking it is a static x86-64 ELF.
func buildInit(t *Tree, p string) error {
	if p == "" {
		return fmt.Errorf("%w: no init binary given", ErrBuild)
	}
	f, err := elfOpen(p)
	if err != nil {
		return fmt.Errorf("init %s: %w", p, err)
	}
	interp, err := elfInterp(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("init %s: %w", p, err)
	}
	if interp != "" {
		return fmt.Errorf("%w: %s asks for %s (build it with CGO_ENABLED=0)", ErrNotStatic, p, interp)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	return t.File("/init", b, 0o755)
}

// buildPayload copies one manifest payload entry.
func buildPayload(t *Tree, repoRoot string, p appliance.PayloadFile, getenv func(string) string) error {
	var unset []string
	src := os.Expand(p.Src, func(v string) string {
		val := getenv(v)
		if val == "" {
			unset = append(unset, v)
		}
		return val
	})
	if len(unset) > 0 {
		return fmt.Errorf("%w: payload %s: $%s is not set", ErrPayloadMissing, p.Src, strings.Join(unset, ", $"))
	}
	if !filepath.IsAbs(src) {
		src = filepath.Join(repoRoot, src)
	}
	st, err := os.Lstat(src)
	if err == nil && st.Mode()&fs.ModeSymlink != 0 {
		st, err = os.Stat(src) // the entry itself is followed, as cp would
	}
	if err != nil {
		return fmt.Errorf("%w: %s (for %s): %v", ErrPayloadMissing, src, p.Dst, err)
	}
	if !st.IsDir() {
		perm := st.Mode().Perm()
		if p.Mode != 0 {
			perm = fs.FileMode(p.Mode&0o777) | buildSpecialBits(p.Mode)
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrPayloadMissing, err)
		}
		return t.File(p.Dst, b, perm)
	}
	// Walk the real directory, so that a payload given as a symlink to a
	// release directory is copied, not linked.
	if src, err = filepath.EvalSymlinks(src); err != nil {
		return fmt.Errorf("%w: %v", ErrPayloadMissing, err)
	}
	return filepath.WalkDir(src, func(hp string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("%w: %v", ErrPayloadMissing, err)
		}
		rel, err := filepath.Rel(src, hp)
		if err != nil {
			return err
		}
		dst := path.Join(p.Dst, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrPayloadMissing, err)
		}
		switch mode := info.Mode(); {
		case mode.IsDir():
			if rel == "." && p.Mode != 0 {
				return t.Dir(dst, fs.FileMode(p.Mode&0o777)|buildSpecialBits(p.Mode))
			}
			return t.Dir(dst, mode&cpioPermBits)
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(hp)
			if err != nil {
				return err
			}
			return t.Symlink(dst, target)
		case mode.IsRegular():
			b, err := os.ReadFile(hp)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrPayloadMissing, err)
			}
			return t.File(dst, b, mode&cpioPermBits)
		default:
			return fmt.Errorf("%w: payload %s holds %s, which is not a file, directory or symlink", ErrBuild, p.Src, hp)
		}
	})
}

// buildSpecialBits maps the octal setuid/setgid/sticky bits of a manifest
// mode to io/fs bits.
func buildSpecialBits(mode uint32) fs.FileMode {
	var m fs.FileMode
	if mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}
