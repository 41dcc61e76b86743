package boot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// OperatorFiles is what the operator put on the ESP, each file read once.
type OperatorFiles struct {
	// ConfigPath is the ESP path config.json was read from; "" if absent.
	ConfigPath string
	// ConfigRaw is the bytes as read (at most MaxBytes+1): what gets
	// measured, accepted or not. Config is the same bytes when they passed
	// ValidateConfig, else nil; ConfigErr says why.
	ConfigRaw []byte
	Config    []byte
	ConfigErr error
	// WifiPath is the ESP path wifi.conf was read from; "" if absent or not
	// wanted. Wifi is set only when it parsed; WifiErr says why not.
	WifiPath string
	Wifi     *WifiCreds
	WifiErr  error
}

// ErrOperatorRead: an operator file exists but cannot be read.
var ErrOperatorRead = errors.New("cannot read operator file")

// ReadOperatorFiles reads config.json and, only when wantWifi (the
// "<ns>.wifi=enabled" flag: without it wifi.conf is never parsed), wifi.conf
// from the ESP mounted at root. Each file is read once with a cap of its
// maximum size plus one byte; for each, the first existing path in the
// spec's list wins. The wifi bytes are wiped after parsing.
func ReadOperatorFiles(root string, spec ESPSpec, wantWifi bool) OperatorFiles {
	var of OperatorFiles
	var raw []byte
	of.ConfigPath, raw, of.ConfigErr = readFirst(root, spec.Config.Paths, int64(spec.Config.MaxBytes)+1)
	if of.ConfigPath != "" && of.ConfigErr == nil {
		of.ConfigRaw = raw
		if of.ConfigErr = ValidateConfig(raw, spec.Config); of.ConfigErr == nil {
			of.Config = raw
		}
	}
	if !wantWifi {
		return of
	}
	var wb []byte
	of.WifiPath, wb, of.WifiErr = readFirst(root, spec.Wifi.Paths, WifiMaxBytes+1)
	defer clear(wb)
	if of.WifiPath != "" && of.WifiErr == nil {
		creds, err := ParseWifi(wb)
		if err != nil {
			of.WifiErr = err
		} else {
			of.Wifi = &creds
		}
	}
	return of
}

// readFirst reads up to limit bytes of the first path in paths that exists
// under root. None existing is ("", nil, nil).
func readFirst(root string, paths []string, limit int64) (string, []byte, error) {
	for _, p := range paths {
		f, err := os.Open(filepath.Join(root, p))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return p, nil, fmt.Errorf("%w: %s: %v", ErrOperatorRead, p, err)
		}
		st, err := f.Stat()
		if err == nil && !st.Mode().IsRegular() {
			err = errors.New("not a regular file")
		}
		var b []byte
		if err == nil {
			b, err = io.ReadAll(io.LimitReader(f, limit))
		}
		f.Close()
		if err != nil {
			return p, nil, fmt.Errorf("%w: %s: %v", ErrOperatorRead, p, err)
		}
		return p, b, nil
	}
	return "", nil, nil
}

// WriteFileAtomic replaces path with b: a temporary file in the same
// directory, written, given exactly perm (whatever the umask), fsynced,
// renamed over path, and the directory fsynced. On error path is untouched
// and the temporary file is gone.
func WriteFileAtomic(path string, b []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err = f.Write(b); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// InitConfigOut writes "{}" (0600) to path: the operator config until an
// accepted one replaces it (CONTRACTS §1.6).
func InitConfigOut(path string) error {
	return WriteFileAtomic(path, []byte("{}"), 0o600)
}
