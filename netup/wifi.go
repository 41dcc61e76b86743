package netup

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// wifiState is the association as last seen, with a broadcast channel
// for waiters; it has its own lock so supplicant events never wait on Net.mu.
type wifiState struct {
	mu        sync.Mutex
	ev        *WifiEvidence
	connected bool
	changed   chan struct{}
}

func (w *wifiState) update(f func(ev *WifiEvidence, connected *bool)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ev == nil {
		w.ev = &WifiEvidence{}
	}
	f(w.ev, &w.connected)
	w.ev.Associated = w.connected
	close(w.changed)
	w.changed = make(chan struct{})
}

func (w *wifiState) isConnected() (bool, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.connected, w.changed
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

// WiFi states in evidence.
const (
	wifiConnecting = "connecting"
	wifiConnected  = "connected"
	wifiWrongKey   = "wrong-key"
	wifiNotFound   = "not-found"
	wifiRestarting = "supplicant-restarting"
	wifiNoIface    = "no-interface"
)

// WiFi status lines; the SSID was validated to a safe character set.
func lineWifiConnecting(ssid string) string { return fmt.Sprintf("WiFi: connecting to %s.", ssid) }
func lineWifiNotFound(ssid string) string   { return fmt.Sprintf("WiFi: network %s not found.", ssid) }
func lineWifiWrongKey(ssid string) string   { return fmt.Sprintf("WiFi: wrong password for %s.", ssid) }
func lineWifiConnected(ssid string) string  { return fmt.Sprintf("WiFi: connected to %s.", ssid) }
func lineWifiCannotJoin(ssid string) string { return fmt.Sprintf("WiFi: cannot join %s.", ssid) }
func lineWifiRestart() string               { return "WiFi: supplicant stopped; restarting." }
func lineWifiNoIface() string               { return "WiFi: no wireless interface found." }

// awaitWirelessLink says so when no wl* interface with a device shows up
// within WifiWait; one that appears later is still started by hotplug.
func (n *Net) awaitWirelessLink(ctx context.Context) {
	err := waitFor(ctx, n.clk, "wl* interface", n.cfg.WifiWait, func() (bool, <-chan struct{}) {
		n.mu.Lock()
		defer n.mu.Unlock()
		for _, st := range n.links {
			if st.NIC.Wireless {
				return true, n.linksChanged
			}
		}
		return false, n.linksChanged
	})
	if errors.Is(err, ErrTimeout) {
		n.wifi.update(func(ev *WifiEvidence, _ *bool) { ev.SSID, ev.State = n.cfg.Wifi.SSID, wifiNoIface })
		n.emit(Status{Word: WordWifi, Line: lineWifiNoIface()})
	}
}

// runWifi joins the configured network on a wireless link, through the
// driver when it does the handshake itself, else through a supervised
// wpa_supplicant, and runs DHCP once associated.
func (n *Net) runWifi(ctx context.Context, nic NIC, since time.Time) {
	name, ssid := nic.Name, n.cfg.Wifi.SSID
	n.wifi.update(func(ev *WifiEvidence, c *bool) {
		*ev = WifiEvidence{Iface: name, SSID: ssid, State: wifiConnecting}
		*c = false
	})
	n.setLinkWord(name, stateAssociating, WordWifi, lineWifiConnecting(ssid))
	if seen, err := n.cfg.Radio.Visible(ctx, name); err == nil && !slices.Contains(seen, ssid) {
		n.wifiProblem(name, wifiNotFound, lineWifiNotFound(ssid))
	}
	offload := n.cfg.Radio.ConnectPSK(name, ssid, n.cfg.Wifi.PSK) == nil
	if !offload {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.superviseSupplicant(ctx, name)
		}()
	}
	n.dhcpLoop(ctx, name, since, func(ctx context.Context) bool {
		return n.awaitAssociation(ctx, name, offload)
	})
}

// awaitAssociation waits until the link is associated with keys in place
// (supplicant CONNECTED, or the driver's association when it offloads)
// and has carrier: bounded first, then for as long as ctx lives.
func (n *Net) awaitAssociation(ctx context.Context, name string, offload bool) bool {
	what := "WiFi association on " + name
	cond := func() (bool, <-chan struct{}) {
		if offload {
			ok, ch := n.hub.hasCarrier(name)()
			if ok {
				n.markAssociated(name)
			}
			return ok, ch
		}
		connected, wch := n.wifi.isConnected()
		if !connected {
			return false, wch
		}
		ok, cch := n.hub.hasCarrier(name)()
		return ok, either(ctx, wch, cch)
	}
	err := waitFor(ctx, n.clk, what, n.cfg.WifiWait, cond)
	if err == nil {
		return true
	}
	if !errors.Is(err, ErrTimeout) {
		return false
	}
	if ev := n.wifi.evidence(); ev == nil || ev.State == wifiConnecting {
		n.wifiProblem(name, wifiConnecting, lineWifiCannotJoin(n.cfg.Wifi.SSID))
	}
	return waitFor(ctx, n.clk, what, 0, cond) == nil
}

// markAssociated records the BSS the link is on, as the radio reports it.
func (n *Net) markAssociated(name string) {
	ssid, bssid, ok, err := n.cfg.Radio.Associated(name)
	n.wifi.update(func(ev *WifiEvidence, c *bool) {
		*c = true
		ev.State = wifiConnected
		if err == nil && ok && ssid == n.cfg.Wifi.SSID {
			ev.BSSID = bssid
		}
	})
}

// wifiProblem records and reports a WiFi state that is not connected.
func (n *Net) wifiProblem(name, state, line string) {
	n.wifi.update(func(ev *WifiEvidence, c *bool) { ev.State = state; *c = false })
	n.setLinkWord(name, stateAssociating, WordWifi, line)
}

// superviseSupplicant keeps wpa_supplicant running, restarting it with
// backoff (reset once a run lasted a minute).
func (n *Net) superviseSupplicant(ctx context.Context, name string) {
	ssid := n.cfg.Wifi.SSID
	failures := 0
	for ctx.Err() == nil {
		started := n.clk.Now()
		_ = n.runSupplicantOnce(ctx, name, func(ev supEvent) {
			switch ev {
			case supConnected:
				n.markAssociated(name)
				n.setLinkWord(name, stateDHCP, WordWifi, lineWifiConnected(ssid))
			case supDisconnected:
				n.wifi.update(func(ev *WifiEvidence, c *bool) {
					*c, ev.BSSID = false, ""
					// The supplicant reports the disconnect of a failed
					// handshake before its reason: keep a known reason.
					if ev.State != wifiWrongKey && ev.State != wifiNotFound {
						ev.State = wifiConnecting
					}
				})
			case supWrongKey:
				n.wifiProblem(name, wifiWrongKey, lineWifiWrongKey(ssid))
			case supNotFound:
				n.wifiProblem(name, wifiNotFound, lineWifiNotFound(ssid))
			}
		})
		if ctx.Err() != nil {
			return
		}
		n.wifiProblem(name, wifiRestarting, lineWifiRestart())
		if n.clk.Now().Sub(started) >= time.Minute {
			failures = 0
		}
		failures++
		if !sleep(ctx, n.clk, retryBackoff(failures)) {
			return
		}
	}
}

// either is closed when a or b is (or ctx ends), for a wait on two sources.
func either(ctx context.Context, a, b <-chan struct{}) <-chan struct{} {
	out := make(chan struct{})
	go func() {
		defer close(out)
		select {
		case <-a:
		case <-b:
		case <-ctx.Done():
		}
	}()
	return out
}
