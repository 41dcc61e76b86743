package netup

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// WifiConfig is the validated WiFi credential (the lead converts it from
// boot.WifiCreds). The PSK is never logged, shown or kept in a file.
type WifiConfig struct {
	SSID string
	PSK  []byte
}

// String keeps the PSK out of any %v of the config.
func (w WifiConfig) String() string { return fmt.Sprintf("wifi %q (psk hidden)", w.SSID) }

// GoString keeps the PSK out of %#v as well.
func (w WifiConfig) GoString() string { return w.String() }

func (w *WifiConfig) validate() error {
	if len(w.SSID) < 1 || len(w.SSID) > 32 {
		return fmt.Errorf("%w: SSID length %d", ErrWifi, len(w.SSID))
	}
	for i := 0; i < len(w.SSID); i++ {
		c := w.SSID[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '_' || c == ' ' || c == '.' || c == '\'' || c == '-') {
			return fmt.Errorf("%w: SSID has a character outside [A-Za-z0-9_ .'-]", ErrWifi)
		}
	}
	if len(w.PSK) < 8 || len(w.PSK) > 63 {
		return fmt.Errorf("%w: passphrase must be 8-63 characters", ErrWifi)
	}
	for _, c := range w.PSK {
		if c < 0x20 || c == 0x7f || c == '"' || c == '\\' || c == '$' || c == '`' || c >= 0x80 {
			return fmt.Errorf("%w: passphrase has a refused character", ErrWifi)
		}
	}
	return nil
}

// wifiState holds the last association seen, guarded by its own lock.
type wifiState struct {
	mu sync.Mutex
	ev *WifiEvidence
}

func (w *wifiState) set(ev WifiEvidence) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ev = &ev
}

func (w *wifiState) evidence() *WifiEvidence {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ev == nil {
		return nil
	}
	c := *w.ev
	return &c
}

// runWifi brings up a wireless link. Association is not implemented yet:
// the link is reported and left alone.
func (n *Net) runWifi(ctx context.Context, nic NIC, since time.Time) {
	_ = since
	n.wifi.set(WifiEvidence{Iface: nic.Name, SSID: n.cfg.Wifi.SSID, State: stateNoWifi})
	n.setLink(nic.Name, stateNoWifi, nic.Name+": WiFi is not supported yet.")
	<-ctx.Done()
}
