package initramfs

// Operator files on an existing disk image: config.json and wifi.conf are
// validated with the same rules the appliance applies at boot, then put on
// (or removed from) the image's ESP with mtools, without root or loop
// devices. The UKI on the image is never touched.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"inert/boot"
)

// Errors from editing operator files.
var (
	ErrOperatorFile = errors.New("esp: operator file rejected")
	ErrESPConflict  = errors.New("esp: a file cannot be both set and removed")
)

// OperatorEdit says what to change on an image's ESP. A nil file with its
// Remove flag unset is left as it is.
type OperatorEdit struct {
	Config       []byte
	Wifi         []byte
	RemoveConfig bool
	RemoveWifi   bool
}

// SetOperatorFiles validates the files in edit and applies edit to the ESP
// of the disk image at path. Nothing is written unless every given file
// passes. Errors never include file contents (the PSK stays out of them).
func SetOperatorFiles(image string, edit OperatorEdit, progress io.Writer) error {
	if progress == nil {
		progress = io.Discard
	}
	spec := boot.DefaultESPSpec()
	if (edit.Config != nil && edit.RemoveConfig) || (edit.Wifi != nil && edit.RemoveWifi) {
		return ErrESPConflict
	}
	if edit.Config != nil {
		if err := boot.ValidateConfig(edit.Config, spec.Config); err != nil {
			return fmt.Errorf("%w: config.json: %w", ErrOperatorFile, err)
		}
	}
	if edit.Wifi != nil {
		creds, err := boot.ParseWifi(edit.Wifi)
		if err != nil {
			return fmt.Errorf("%w: wifi.conf: %w", ErrOperatorFile, err)
		}
		creds.Wipe()
	}

	fat, err := OpenESP(image)
	if err != nil {
		return err
	}
	configPath, wifiPath := spec.Config.Paths[0], spec.Wifi.Paths[0]
	if err := fat.Mkdir("/EFI", filepath.Dir(configPath), filepath.Dir(wifiPath)); err != nil {
		return err
	}
	steps := []struct {
		path   string
		data   []byte
		remove bool
	}{
		{configPath, edit.Config, edit.RemoveConfig},
		{wifiPath, edit.Wifi, edit.RemoveWifi},
	}
	for _, s := range steps {
		switch {
		case s.remove:
			fmt.Fprintf(progress, "esp: removing %s\n", s.path)
			// Also the other spelling the boot side would read.
			for _, p := range operatorAllPaths(spec, s.path) {
				if err := fat.Remove(p); err != nil {
					return err
				}
			}
		case s.data != nil:
			fmt.Fprintf(progress, "esp: writing %s (%d bytes)\n", s.path, len(s.data))
			if err := fat.Put(s.path, s.data); err != nil {
				return err
			}
		}
	}
	return nil
}

// operatorAllPaths is every path the boot side tries for the file at p.
func operatorAllPaths(spec boot.ESPSpec, p string) []string {
	if p == spec.Config.Paths[0] {
		return spec.Config.Paths
	}
	return spec.Wifi.Paths
}

// OpenESP finds the ESP partition of a disk image file.
func OpenESP(image string) (ESPFAT, error) {
	f, err := os.Open(image)
	if err != nil {
		return ESPFAT{}, fmt.Errorf("esp: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ESPFAT{}, fmt.Errorf("esp: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return ESPFAT{}, fmt.Errorf("esp: %s is not a regular file", image)
	}
	loc, err := FindESP(f, fi.Size())
	if err != nil {
		return ESPFAT{}, fmt.Errorf("esp: %s: %w", image, err)
	}
	return ESPFAT{Image: image, Offset: loc.Offset}, nil
}

// ESPFAT edits the FAT filesystem of an image's ESP in place with mtools,
// without root or loop devices. Timestamps are pinned so edits stay
// reproducible.
type ESPFAT struct {
	Image  string
	Offset int64
}

func (e ESPFAT) mtools(tool string, args ...string) ([]byte, error) {
	full := append([]string{"-i", fmt.Sprintf("%s@@%d", e.Image, e.Offset)}, args...)
	return imageOutput(tool, full...)
}

// Mkdir creates each directory that does not exist yet, in order.
func (e ESPFAT) Mkdir(dirs ...string) error {
	for _, d := range dirs {
		ok, err := e.Exists(d)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		if _, err := e.mtools("mmd", "::"+d); err != nil {
			return err
		}
	}
	return nil
}

// Exists says whether path exists on the filesystem. FAT names compare
// case-insensitively, so /EFI/boot and /EFI/Boot are the same directory.
func (e ESPFAT) Exists(path string) (bool, error) {
	// mdir fails both for a missing path and a broken image; tell them
	// apart by listing the root, which always exists.
	if _, err := e.mtools("mdir", "-b", "::"+path); err == nil {
		return true, nil
	}
	if _, err := e.mtools("mdir", "-b", "::/"); err != nil {
		return false, err
	}
	return false, nil
}

// Put writes data to path, replacing any file there. The staging copy is
// private (0600) and removed before Put returns.
func (e ESPFAT) Put(path string, data []byte) error {
	dir, err := os.MkdirTemp("", "inert-esp-*")
	if err != nil {
		return fmt.Errorf("esp: %w", err)
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "f")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		return fmt.Errorf("esp: %w", err)
	}
	_, err = e.mtools("mcopy", "-o", src, "::"+path)
	return err
}

// Get reads the file at path.
func (e ESPFAT) Get(path string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "inert-esp-*")
	if err != nil {
		return nil, fmt.Errorf("esp: %w", err)
	}
	defer os.RemoveAll(dir)
	dst := filepath.Join(dir, "f")
	if _, err := e.mtools("mcopy", "::"+path, dst); err != nil {
		return nil, err
	}
	return os.ReadFile(dst)
}

// Remove deletes the file at path; a missing file is not an error.
func (e ESPFAT) Remove(path string) error {
	ok, err := e.Exists(path)
	if err != nil || !ok {
		return err
	}
	_, err = e.mtools("mdel", "::"+path)
	return err
}
