package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"inert/netup"
)

// NetworkFile is the run-dir file holding the network evidence (links,
// their state, the primary, the WiFi association), rewritten on every
// network status report; the service may read it (0644). It never holds a
// secret: netup.NetworkEvidence has no field for one.
const NetworkFile = "network.json"

func (w *Worker) wifiAllowed() bool {
	v, _ := w.Cmdline.Value(w.ns("wifi"))
	return v == "enabled"
}

// network starts bring-up in the background: DHCP on every NIC, WiFi when
// allowed and configured. Prod does not wait for a lease (CONTRACTS §1.14);
// the splash shows the address once it is known.
func (w *Worker) network(ctx context.Context) error {
	cfg := netup.Config{
		SysRoot:    w.Env.SysRoot,
		RunDir:     w.path(w.M.RunDir),
		ResolvConf: w.path("/etc/resolv.conf"),
		Links:      netup.Netlink{},
		DHCP:       netup.NClient4{},
	}
	if w.files.Wifi != nil && w.wifiAllowed() {
		cfg.Wifi = &netup.WifiConfig{SSID: w.files.Wifi.SSID, PSK: w.files.Wifi.PSK}
	}
	n, err := netup.New(cfg)
	if err != nil {
		return Environment("Network could not start; the service runs without it.", err)
	}
	w.status("network", w.M.Word("dhcp"), "Bringing up the network.")
	w.background.Add(1)
	go func() {
		defer w.background.Done()
		err := n.Run(w.bgCtx, func(s netup.Status) {
			w.writeNetworkEvidence(n.Snapshot())
			w.reportNetwork(s)
		})
		if err != nil && w.bgCtx.Err() == nil {
			w.status("network", "", "Network bring-up stopped: "+sanitize(err.Error()))
		}
	}()
	return nil
}

func (w *Worker) reportNetwork(s netup.Status) {
	ev := Event{Step: "network", State: StateInfo, Message: s.Line}
	if !s.Secondary {
		ev.Status = s.Line
		switch s.Word {
		case netup.WordDHCP:
			ev.Word = w.M.Word("dhcp")
		case netup.WordWifi:
			ev.Word = w.M.Word("wifi")
		}
	}
	if s.Primary != nil {
		ev.Data = map[string]string{"iface": s.Primary.Iface, "ip": s.Primary.IP.String(),
			"gw": s.Primary.Gateway.String()}
		if s.Elapsed > 0 {
			ev.Data["link_to_lease_ms"] = fmt.Sprint(s.Elapsed.Milliseconds())
		}
	}
	w.Emit(ev)
}

// writeNetworkEvidence replaces NetworkFile atomically, before the status
// it goes with is reported, so whoever saw the event reads matching evidence.
func (w *Worker) writeNetworkEvidence(ev netup.NetworkEvidence) {
	b, err := json.MarshalIndent(ev, "", "  ")
	if err == nil {
		err = writePublicAtomic(w.path(filepath.Join(w.M.RunDir, NetworkFile)), append(b, '\n'))
	}
	if err != nil {
		w.info("network", "network evidence not written: "+sanitize(err.Error()))
	}
}

// writePublicAtomic writes a 0644 file by rename, so a reader sees the old
// or the new contents, never a part, and never a moment of another mode.
func writePublicAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Wait blocks while background duties run.
func (w *Worker) Wait() { w.background.Wait() }
