package boot

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// efiVarBytes builds an efivarfs file the way the kernel presents one: the
// attribute word, then the payload. The UTF-16LE payload comes from iconv,
// independently of the parser.
func efiVarBytes(t testing.TB, s string, nul bool) []byte {
	t.Helper()
	if nul {
		s += "\x00"
	}
	cmd := exec.Command("iconv", "-f", "UTF-8", "-t", "UTF-16LE")
	cmd.Stdin = strings.NewReader(s)
	payload, err := cmd.Output()
	if err != nil {
		t.Fatalf("iconv: %v", err)
	}
	// EFI_VARIABLE_BOOTSERVICE_ACCESS | RUNTIME_ACCESS, as systemd-boot sets.
	return append(binary.LittleEndian.AppendUint32(nil, 6), payload...)
}

func TestParseEFIStringVar(t *testing.T) {
	for _, s := range []string{"", "9C7E2A5F-0C2B-4E7D-9D2E-7A1B3C4D5E6F", `\EFI\Boot\BootX64.efi`, "ünïcødé 😀"} {
		for _, nul := range []bool{true, false} {
			got, err := ParseEFIStringVar(efiVarBytes(t, s, nul))
			if err != nil || got != s {
				t.Errorf("ParseEFIStringVar(%q, nul=%v) = %q, %v", s, nul, got, err)
			}
		}
	}
	good := efiVarBytes(t, "abc", true)
	for name, b := range map[string][]byte{
		"short header":        {6, 0},
		"odd length":          append(append([]byte{}, good...), 'x'),
		"data after NUL":      append(append([]byte{}, good...), 'x', 0),
		"lone high surrogate": append(binary.LittleEndian.AppendUint32(nil, 6), 0x00, 0xD8, 'a', 0),
		"lone low surrogate":  append(binary.LittleEndian.AppendUint32(nil, 6), 0x00, 0xDC),
		"too big":             make([]byte, maxEFIVarSize+2),
	} {
		if _, err := ParseEFIStringVar(b); !errors.Is(err, ErrBadEFIVar) {
			t.Errorf("%s: err = %v, want ErrBadEFIVar", name, err)
		}
	}
}

func TestFirmwareBootPartUUID(t *testing.T) {
	const stub = "9C7E2A5F-0C2B-4E7D-9D2E-7A1B3C4D5E6F"
	const loader = "11111111-2222-3333-4444-555555555555"
	varPath := func(dir, name string) string { return filepath.Join(dir, name+"-"+loaderVendorGUID) }
	for _, tc := range []struct {
		name       string
		stub, ldr  []byte
		wantUUID   string
		wantSource string
		wantErr    error
	}{
		{name: "stub wins", stub: efiVarBytes(t, stub, true), ldr: efiVarBytes(t, loader, true),
			wantUUID: strings.ToLower(stub), wantSource: StubDevicePartUUIDVar},
		{name: "loader fallback", ldr: efiVarBytes(t, loader, false),
			wantUUID: loader, wantSource: LoaderDevicePartUUIDVar},
		{name: "neither", wantErr: ErrNoFirmwareVar},
		{name: "stub not a UUID", stub: efiVarBytes(t, "not-a-uuid", true), ldr: efiVarBytes(t, loader, true),
			wantErr: ErrBadEFIVar, wantSource: StubDevicePartUUIDVar},
		{name: "uuid with braces", ldr: efiVarBytes(t, "{"+loader+"}", true), wantErr: ErrBadEFIVar,
			wantSource: LoaderDevicePartUUIDVar},
		{name: "odd length", ldr: append(efiVarBytes(t, loader, true), 1), wantErr: ErrBadEFIVar,
			wantSource: LoaderDevicePartUUIDVar},
		{name: "oversized", ldr: make([]byte, 5000), wantErr: ErrBadEFIVar, wantSource: LoaderDevicePartUUIDVar},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.stub != nil {
				os.WriteFile(varPath(dir, StubDevicePartUUIDVar), tc.stub, 0o644)
			}
			if tc.ldr != nil {
				os.WriteFile(varPath(dir, LoaderDevicePartUUIDVar), tc.ldr, 0o644)
			}
			u, src, err := FirmwareBootPartUUID(dir)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
			} else if err != nil || u != tc.wantUUID {
				t.Fatalf("got %q, %v; want %q", u, err, tc.wantUUID)
			}
			if src != tc.wantSource {
				t.Errorf("source = %q, want %q", src, tc.wantSource)
			}
		})
	}
}

func FuzzParseEFIStringVar(f *testing.F) {
	f.Add(efiVarBytes(f, "9C7E2A5F-0C2B-4E7D-9D2E-7A1B3C4D5E6F", true))
	f.Add([]byte{6, 0, 0, 0, 0, 0xD8})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseEFIStringVar(b)
		if err != nil {
			if !errors.Is(err, ErrBadEFIVar) {
				t.Fatalf("error not ErrBadEFIVar: %v", err)
			}
			return
		}
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			t.Fatalf("decoded %q is not NUL-free UTF-8", s)
		}
		if u, err := CanonicalUUID(s); err == nil && u != strings.ToLower(u) {
			t.Fatalf("canonical UUID %q not lower case", u)
		}
	})
}
