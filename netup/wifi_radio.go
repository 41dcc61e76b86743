package netup

import (
	"context"
	"errors"
	"fmt"

	"github.com/mdlayher/wifi"
)

// ErrNoOffload means the driver cannot do the WPA handshake itself, so
// wpa_supplicant must.
var ErrNoOffload = errors.New("netup: driver does not offload WPA-PSK")

// Radio is the nl80211 side of WiFi that netup needs. Production uses
// MdlayherRadio; tests a fake.
type Radio interface {
	// Visible scans and returns the SSIDs in range.
	Visible(ctx context.Context, iface string) ([]string, error)
	// Associated returns the SSID and BSSID iface is associated with.
	Associated(iface string) (ssid, bssid string, ok bool, err error)
	// ConnectPSK lets the driver join ssid and do the 4-way handshake
	// itself; it returns ErrNoOffload when the driver cannot.
	ConnectPSK(iface, ssid string, psk []byte) error
}

// MdlayherRadio is the production Radio over github.com/mdlayher/wifi.
type MdlayherRadio struct{}

func (MdlayherRadio) open(name string) (*wifi.Client, *wifi.Interface, error) {
	c, err := wifi.New()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: nl80211: %v", ErrWifi, err)
	}
	ifis, err := c.Interfaces()
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("%w: nl80211 interfaces: %v", ErrWifi, err)
	}
	for _, ifi := range ifis {
		if ifi.Name == name {
			return c, ifi, nil
		}
	}
	c.Close()
	return nil, nil, fmt.Errorf("%w: %s is not an nl80211 interface", ErrWifi, name)
}

// Visible implements Radio.
func (r MdlayherRadio) Visible(ctx context.Context, iface string) ([]string, error) {
	c, ifi, err := r.open(iface)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Scan(ctx, ifi); err != nil {
		return nil, fmt.Errorf("%w: scan %s: %v", ErrWifi, iface, err)
	}
	aps, err := c.AccessPoints(ifi)
	if err != nil {
		return nil, fmt.Errorf("%w: scan results %s: %v", ErrWifi, iface, err)
	}
	ssids := make([]string, 0, len(aps))
	for _, ap := range aps {
		ssids = append(ssids, ap.SSID)
	}
	return ssids, nil
}

// Associated implements Radio.
func (r MdlayherRadio) Associated(iface string) (string, string, bool, error) {
	c, ifi, err := r.open(iface)
	if err != nil {
		return "", "", false, err
	}
	defer c.Close()
	bss, err := c.BSS(ifi)
	if err != nil || bss.Status != wifi.BSSStatusAssociated {
		// The library reports "not associated" as an error; both mean no.
		return "", "", false, nil
	}
	return bss.SSID, bss.BSSID.String(), true, nil
}

// ConnectPSK implements Radio.
func (r MdlayherRadio) ConnectPSK(iface, ssid string, psk []byte) error {
	c, ifi, err := r.open(iface)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.ConnectWPAPSK(ifi, ssid, string(psk)); err != nil {
		if errors.Is(err, wifi.ErrNotSupported) {
			return ErrNoOffload
		}
		// Never wrap the library's text: it might one day quote its input.
		return fmt.Errorf("%w: %s: driver connect failed", ErrWifi, iface)
	}
	return nil
}
