// Package apconf is the contract between the WiFi end-to-end tests and their
// test-only wrapper init (e2e/wifiwrap): where the access point's settings
// live in the test initramfs, what they hold, the hostapd configuration they
// render to, and the virtio-serial port the wrapper dumps the guest's run
// directory on. Nothing here ever goes into a production image.
package apconf

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

const (
	// Path is where the tests put the settings in the initramfs.
	Path = "/etc/wifiwrap/ap.json"
	// WrapperPath is where the wrapper binary lives; the UKI command line
	// starts it with rdinit=WrapperPath, and it execs /init (inert).
	WrapperPath = "/wifiwrap"
	// DumpPort is the virtio-serial port name of the run-dir dump.
	DumpPort = "org.inert.test.wifiwrap"
	// DumpHello is the line the guest writes once it has the port open; the
	// host sends DumpRequest only after it (virtio-serial drops what the
	// host writes to a port nobody opened).
	DumpHello   = "wifiwrap-dump ready"
	DumpRequest = "dump"
	// ReadyLine starts the line the wrapper prints on the console when the
	// access point is up; the BSSID follows it.
	ReadyLine = "wifiwrap: access point ready, bssid "
	// FailedLine starts the console line of a wrapper failure.
	FailedLine = "wifiwrap: FAILED: "
)

// ErrConfig marks settings that do not parse or make no sense.
var ErrConfig = errors.New("apconf: bad access point settings")

// Config is the access point the wrapper runs in its own network namespace:
// a WPA2-PSK network and a one-address DHCP server.
type Config struct {
	SSID string `json:"ssid"`
	// PMK is the 256-bit pre-shared key in hex, as hostapd's wpa_psk takes
	// it: the passphrase itself never enters the guest through the wrapper.
	PMK string `json:"pmk"`
	// Channel is the 2.4 GHz channel (1-13).
	Channel int `json:"channel"`
	// APAddr is the access point's address with its prefix; it is the
	// router and DNS server the DHCP server hands out.
	APAddr netip.Prefix `json:"ap_addr"`
	// ClientAddr is the one address the DHCP server leases.
	ClientAddr netip.Addr `json:"client_addr"`
	// LeaseSeconds is the lease time.
	LeaseSeconds uint32 `json:"lease_seconds"`
}

// PMK derives WPA2's pre-shared key from a passphrase (IEEE 802.11i:
// PBKDF2-HMAC-SHA1, the SSID as salt, 4096 rounds, 32 bytes), in hex.
func PMK(passphrase, ssid string) (string, error) {
	key, err := pbkdf2.Key(sha1.New, passphrase, []byte(ssid), 4096, 32)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return hex.EncodeToString(key), nil
}

// Parse decodes and checks settings.
func Parse(r io.Reader) (*Config, error) {
	dec := json.NewDecoder(io.LimitReader(r, 64<<10))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks what the JSON types cannot.
func (c *Config) Validate() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: "+f, append([]any{ErrConfig}, a...)...) }
	if c.SSID == "" || len(c.SSID) > 32 || strings.ContainsAny(c.SSID, "\x00\n\r") {
		return bad("ssid %q", c.SSID)
	}
	if k, err := hex.DecodeString(c.PMK); err != nil || len(k) != 32 {
		return bad("pmk must be 64 hex digits")
	}
	if c.Channel < 1 || c.Channel > 13 {
		return bad("channel %d", c.Channel)
	}
	if !c.APAddr.IsValid() || !c.APAddr.Addr().Is4() || c.APAddr.Bits() < 8 || c.APAddr.Bits() > 30 {
		return bad("ap_addr %v", c.APAddr)
	}
	if !c.ClientAddr.Is4() || !c.APAddr.Contains(c.ClientAddr) || c.ClientAddr == c.APAddr.Addr() {
		return bad("client_addr %v is not another address in %v", c.ClientAddr, c.APAddr)
	}
	if c.LeaseSeconds < 60 {
		return bad("lease_seconds %d", c.LeaseSeconds)
	}
	return nil
}

// Marshal encodes settings for the initramfs.
func (c *Config) Marshal() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return json.MarshalIndent(c, "", "  ")
}

// Hostapd renders hostapd.conf for iface: WPA2-PSK with CCMP only.
func (c *Config) Hostapd(iface string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "interface=%s\ndriver=nl80211\nssid=%s\nhw_mode=g\nchannel=%d\n", iface, c.SSID, c.Channel)
	fmt.Fprintf(&b, "auth_algs=1\nwpa=2\nwpa_key_mgmt=WPA-PSK\nrsn_pairwise=CCMP\nwpa_psk=%s\n", c.PMK)
	return b.Bytes()
}
