package appliance

import (
	"context"
	"fmt"

	"inert/netup"
)

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
		err := n.Run(w.bgCtx, w.reportNetwork)
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

// Wait blocks while background duties run.
func (w *Worker) Wait() { w.background.Wait() }
