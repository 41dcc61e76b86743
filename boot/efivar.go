package boot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf16"
)

// The systemd boot loader interface vendor GUID under which systemd-boot and
// systemd-stub publish what the firmware booted.
const loaderVendorGUID = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"

// Firmware variable names, most specific first: the stub knows the partition
// it was loaded from even when no boot loader ran.
const (
	StubDevicePartUUIDVar   = "StubDevicePartUUID"
	LoaderDevicePartUUIDVar = "LoaderDevicePartUUID"
	StubImageIdentifierVar  = "StubImageIdentifier"
	LoaderImageIdentVar     = "LoaderImageIdentifier"
)

// maxEFIVarSize bounds what is read from efivarfs; these variables are a few
// dozen bytes, so anything larger is not what the loader wrote.
const maxEFIVarSize = 4096

var (
	// ErrNoFirmwareVar: firmware published neither boot-partition variable.
	ErrNoFirmwareVar = errors.New("firmware did not report the boot partition")
	// ErrBadEFIVar: a variable exists but is not a well-formed value.
	ErrBadEFIVar = errors.New("malformed EFI variable")
)

// ParseEFIStringVar decodes an efivarfs file: a 4-byte little-endian
// attribute word, then a UTF-16LE string that may end in one NUL. Anything
// after a NUL, an odd payload length or an unpaired surrogate is ErrBadEFIVar.
func ParseEFIStringVar(b []byte) (string, error) {
	if len(b) > maxEFIVarSize {
		return "", fmt.Errorf("%w: %d bytes, more than %d", ErrBadEFIVar, len(b), maxEFIVarSize)
	}
	if len(b) < 4 {
		return "", fmt.Errorf("%w: %d bytes, shorter than the attribute header", ErrBadEFIVar, len(b))
	}
	payload := b[4:]
	if len(payload)%2 != 0 {
		return "", fmt.Errorf("%w: odd UTF-16 length %d", ErrBadEFIVar, len(payload))
	}
	units := make([]uint16, 0, len(payload)/2)
	for i := 0; i < len(payload); i += 2 {
		units = append(units, binary.LittleEndian.Uint16(payload[i:]))
	}
	for i, u := range units {
		if u == 0 {
			if i != len(units)-1 {
				return "", fmt.Errorf("%w: data after the terminating NUL", ErrBadEFIVar)
			}
			units = units[:i]
			break
		}
	}
	for i := 0; i < len(units); i++ {
		u := units[i]
		switch {
		case utf16.IsSurrogate(rune(u)) && u < 0xDC00 && i+1 < len(units) &&
			units[i+1] >= 0xDC00 && units[i+1] <= 0xDFFF:
			i++ // a valid high+low pair
		case utf16.IsSurrogate(rune(u)):
			return "", fmt.Errorf("%w: unpaired UTF-16 surrogate", ErrBadEFIVar)
		}
	}
	return string(utf16.Decode(units)), nil
}

// CanonicalUUID returns s as a lower-case 8-4-4-4-12 UUID, or ErrBadEFIVar.
// Firmware and systemd-boot write upper case; sysfs and GPT tools lower.
func CanonicalUUID(s string) (string, error) {
	if len(s) != 36 {
		return "", fmt.Errorf("%w: not a UUID (length %d)", ErrBadEFIVar, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return "", fmt.Errorf("%w: not a UUID (no '-' at %d)", ErrBadEFIVar, i)
			}
			continue
		}
		if !isHex(c) {
			return "", fmt.Errorf("%w: not a UUID (non-hex at %d)", ErrBadEFIVar, i)
		}
	}
	return strings.ToLower(s), nil
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// readEFIStringVar reads and decodes <efivarsDir>/<name>-<vendor GUID>.
// A missing variable is reported with fs.ErrNotExist.
func readEFIStringVar(efivarsDir, name string) (string, error) {
	p := filepath.Join(efivarsDir, name+"-"+loaderVendorGUID)
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxEFIVarSize+1))
	if err != nil {
		return "", fmt.Errorf("%w: reading %s: %v", ErrBadEFIVar, name, err)
	}
	s, err := ParseEFIStringVar(b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

// FirmwareBootPartUUID returns the PARTUUID of the partition the firmware
// booted, from StubDevicePartUUID or else LoaderDevicePartUUID, and the name
// of the variable it came from. Neither present: ErrNoFirmwareVar. The first
// present one malformed: ErrBadEFIVar (no fallback to the other, so a bad
// value never silently widens what counts as the boot partition).
func FirmwareBootPartUUID(efivarsDir string) (uuid string, source string, err error) {
	for _, name := range []string{StubDevicePartUUIDVar, LoaderDevicePartUUIDVar} {
		s, err := readEFIStringVar(efivarsDir, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", name, err
		}
		u, err := CanonicalUUID(s)
		if err != nil {
			return "", name, fmt.Errorf("%s: %w", name, err)
		}
		return u, name, nil
	}
	return "", "", ErrNoFirmwareVar
}

// FirmwareImageIdentifier returns the path the firmware loaded the UKI from
// (StubImageIdentifier, else LoaderImageIdentifier), made safe for a
// key=value line, or "" when neither is present or readable. It is a record,
// never a decision input.
func FirmwareImageIdentifier(efivarsDir string) string {
	for _, name := range []string{StubImageIdentifierVar, LoaderImageIdentVar} {
		s, err := readEFIStringVar(efivarsDir, name)
		if err == nil {
			return recordValue(s)
		}
	}
	return ""
}

// recordValue makes outside text safe for one key=value line and a status
// line: printable ASCII only, at most 256 bytes.
func recordValue(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 256 {
			break
		}
		if r < 0x20 || r > 0x7e {
			b.WriteByte('?')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
