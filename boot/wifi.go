package boot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Sentinels for a rejected wifi.conf (CONTRACTS §1.9). No error ever carries
// the PSK or any byte of the file.
var (
	ErrWifiSize  = errors.New("wifi.conf has the wrong size")
	ErrWifiNUL   = errors.New("wifi.conf contains a NUL byte")
	ErrWifiLines = errors.New("wifi.conf must be exactly two lines: SSID, then passphrase")
	ErrWifiSSID  = errors.New("wifi.conf SSID is not allowed")
	ErrWifiPSK   = errors.New("wifi.conf passphrase is not allowed")
)

// The contract's fixed wifi.conf limits.
const (
	WifiMinBytes = 10
	WifiMaxBytes = 256
	ssidMaxLen   = 32
	pskMinLen    = 8
	pskMaxLen    = 63
)

// WifiCreds are parsed credentials. Printing, %v, %#v or JSON never show
// the PSK; call Wipe when done.
type WifiCreds struct {
	SSID string
	PSK  []byte
}

// String hides the PSK.
func (w WifiCreds) String() string {
	return fmt.Sprintf("WifiCreds{SSID: %q, PSK: <redacted>}", w.SSID)
}

// GoString hides the PSK from %#v.
func (w WifiCreds) GoString() string { return w.String() }

// MarshalJSON hides the PSK.
func (w WifiCreds) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		SSID string `json:"ssid"`
		PSK  string `json:"psk"`
	}{w.SSID, "<redacted>"})
}

// Wipe zeroes the PSK in place.
func (w *WifiCreds) Wipe() {
	clear(w.PSK)
	w.PSK = nil
}

// ParseWifi parses wifi.conf: 10..256 bytes, no NUL, every '\r' removed,
// then the SSID line and the PSK line; one trailing newline is fine and
// further lines must be empty. SSID: 1..32 of [A-Za-z0-9_ .'-]. PSK: 8..63
// printable ASCII characters except " \ $ and backtick (IEEE 802.11
// passphrases are printable ASCII; the four are what shells and
// supplicant configs mangle). The returned PSK is a fresh copy; the
// caller should clear b.
func ParseWifi(b []byte) (WifiCreds, error) {
	if len(b) < WifiMinBytes || len(b) > WifiMaxBytes {
		return WifiCreds{}, fmt.Errorf("%w: %d bytes, allowed %d..%d", ErrWifiSize, len(b), WifiMinBytes, WifiMaxBytes)
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return WifiCreds{}, ErrWifiNUL
	}
	clean := make([]byte, 0, len(b))
	for _, c := range b {
		if c != '\r' {
			clean = append(clean, c)
		}
	}
	defer clear(clean)
	lines := bytes.Split(clean, []byte("\n"))
	if len(lines) < 2 {
		return WifiCreds{}, fmt.Errorf("%w: found one line", ErrWifiLines)
	}
	for i, l := range lines[2:] {
		if len(l) > 0 {
			return WifiCreds{}, fmt.Errorf("%w: line %d is not empty", ErrWifiLines, i+3)
		}
	}
	ssid, psk := lines[0], lines[1]
	if len(ssid) < 1 || len(ssid) > ssidMaxLen {
		return WifiCreds{}, fmt.Errorf("%w: %d characters, allowed 1..%d", ErrWifiSSID, len(ssid), ssidMaxLen)
	}
	for i, c := range ssid {
		if !ssidChar(c) {
			return WifiCreds{}, fmt.Errorf("%w: character %d is not one of A-Z a-z 0-9 _ space . ' -", ErrWifiSSID, i+1)
		}
	}
	if len(psk) < pskMinLen || len(psk) > pskMaxLen {
		return WifiCreds{}, fmt.Errorf("%w: %d characters, allowed %d..%d", ErrWifiPSK, len(psk), pskMinLen, pskMaxLen)
	}
	for i, c := range psk {
		if !pskChar(c) {
			return WifiCreds{}, fmt.Errorf("%w: character %d is a control, non-ASCII, or one of \" \\ $ `", ErrWifiPSK, i+1)
		}
	}
	return WifiCreds{SSID: string(ssid), PSK: bytes.Clone(psk)}, nil
}

func ssidChar(c byte) bool {
	switch {
	case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '_', ' ', '.', '\'', '-':
		return true
	}
	return false
}

func pskChar(c byte) bool {
	if c < 0x20 || c > 0x7e {
		return false
	}
	switch c {
	case '"', '\\', '$', '`':
		return false
	}
	return true
}
