package boot

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Run-directory file names of the UKI record (CONTRACTS §1.8).
const (
	UKIDigestFile = "boot-uki-sha256"
	UKISourceFile = "boot-uki-source"
)

// ErrUKIRecord: the loader could not be hashed or the record not written.
var ErrUKIRecord = errors.New("cannot record the boot UKI")

// maxUKIBytes bounds the hash: a UKI larger than this is not one we built.
const maxUKIBytes = 1 << 30

// RecordUKI hashes the loader on the mounted ESP (streamed) and writes
// <runDir>/boot-uki-sha256 (64 hex digits and a newline) and
// <runDir>/boot-uki-source (key=value lines), both 0600. The record says
// what was on the medium, not what ran: trusted-as-executed=false. It
// returns the hex digest.
func RecordUKI(runDir string, esp *ESP, spec ESPSpec) (string, error) {
	f, err := os.Open(filepath.Join(esp.MountPoint, spec.Loader))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUKIRecord, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, maxUKIBytes+1))
	if err != nil {
		return "", fmt.Errorf("%w: reading %s: %v", ErrUKIRecord, spec.Loader, err)
	}
	if n > maxUKIBytes {
		return "", fmt.Errorf("%w: %s is larger than %d bytes", ErrUKIRecord, spec.Loader, maxUKIBytes)
	}
	digest := hex.EncodeToString(h.Sum(nil))
	if err := WriteFileAtomic(filepath.Join(runDir, UKIDigestFile), []byte(digest+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("%w: %w", ErrUKIRecord, err)
	}
	if err := WriteFileAtomic(filepath.Join(runDir, UKISourceFile), []byte(ukiSource(esp)), 0o600); err != nil {
		return "", fmt.Errorf("%w: %w", ErrUKIRecord, err)
	}
	return digest, nil
}

// ukiSource renders the boot-uki-source lines in the contract's order.
func ukiSource(esp *ESP) string {
	var b strings.Builder
	for _, kv := range [][2]string{
		{"source", "boot-media-scan"},
		{"device", esp.Device},
		{"partuuid", esp.PartUUID},
		{"firmware-partuuid", esp.FirmwarePartUUID},
		{"firmware-image-identifier", esp.FirmwareImageID},
		{"trusted-as-executed", "false"},
	} {
		b.WriteString(kv[0] + "=" + recordValue(kv[1]) + "\n")
	}
	return b.String()
}
