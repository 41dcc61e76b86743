package e2e

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"inert/appliance"
	"inert/e2e/wifiwrap/apconf"
	"inert/initramfs"
	"inert/netup"
	"inert/scripts/harness"
)

// WiFi end to end: mac80211_hwsim gives the guest two radios on one
// simulated medium. The test-only wrapper init (e2e/wifiwrap, started with
// rdinit=, never in a production image) moves the second radio into its own
// network namespace with hostapd (WPA2-PSK) and a DHCP server, then execs
// inert. The stick carries wifi.conf and the signed command line allows
// WiFi. The wired NIC's link is down at boot, so WiFi is the only network
// until the test brings the cable back through QMP.

const wifiCmdline = "console=ttyS0,115200 loglevel=4 panic=0 no_timer_check inert.mode=debug inert.wifi=enabled rdinit=" + apconf.WrapperPath

var (
	wifiOnce     sync.Once
	wifiWrapper  string // the wrapper binary
	wifiManifest string // the demo manifest plus hwsim, wpa_supplicant and hostapd
	wifiErr      error
)

// wifiArtefacts builds the wrapper and writes the WiFi test manifest, once.
func wifiArtefacts(t *testing.T) (wrapper, manifest string) {
	t.Helper()
	wifiOnce.Do(func() {
		wifiWrapper = filepath.Join(work, "bin", "wifiwrap")
		if wifiErr = run(repoRoot, "go", "build", "-trimpath", "-buildvcs=false", "-o", wifiWrapper, "./e2e/wifiwrap"); wifiErr != nil {
			return
		}
		var b []byte
		if b, wifiErr = os.ReadFile(filepath.Join(repoRoot, "appliance", "profiles", "demo.json")); wifiErr != nil {
			return
		}
		var m map[string]any
		if wifiErr = json.Unmarshal(b, &m); wifiErr != nil {
			return
		}
		// What a WiFi profile adds (README): the driver, the kernel ciphers
		// of WPA2-CCMP, and the supplicant with its libraries. hostapd is
		// the test's access point.
		m["modules"] = append(m["modules"].([]any), "mac80211_hwsim", "ccm", "ctr", "cmac")
		m["binaries"] = append(m["binaries"].([]any), "/usr/sbin/wpa_supplicant", "/usr/sbin/hostapd")
		if b, wifiErr = json.MarshalIndent(m, "", "  "); wifiErr != nil {
			return
		}
		if _, wifiErr = appliance.ParseManifest(b); wifiErr != nil {
			return
		}
		wifiManifest = filepath.Join(work, "wifi-manifest.json")
		wifiErr = os.WriteFile(wifiManifest, b, 0o644)
	})
	if wifiErr != nil {
		t.Fatal(wifiErr)
	}
	return wifiWrapper, wifiManifest
}

// wifiInitramfs is the WiFi manifest's initramfs followed by a second cpio
// holding the wrapper and the access point's settings: the kernel unpacks
// concatenated archives in order, and this one starts on a 4-byte boundary
// as it requires.
func wifiInitramfs(t *testing.T, ap apconf.Config) string {
	t.Helper()
	wrapper, manifest := wifiArtefacts(t)
	base, err := os.ReadFile(initramfsFor(t, manifest))
	if err != nil {
		t.Fatal(err)
	}
	for len(base)%4 != 0 {
		base = append(base, 0)
	}
	bin, err := os.ReadFile(wrapper)
	if err != nil {
		t.Fatal(err)
	}
	settings, err := ap.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tree := initramfs.NewTree()
	if err := tree.File(apconf.WrapperPath, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := tree.File(apconf.Path, settings, 0o444); err != nil {
		t.Fatal(err)
	}
	out := bytes.NewBuffer(base)
	if _, err := tree.WriteCPIO(out); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "initramfs-wifi.cpio")
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// wifiStick is a stick with the UKI of initrd and wifi.conf put on the ESP
// the way an operator does it (inert esp set --wifi).
func wifiStick(t *testing.T, initrd, ssid, psk string) string {
	t.Helper()
	ukiPath := uki(t, initrd, wifiCmdline)
	img := filepath.Join(t.TempDir(), "stick.img")
	if err := run(repoRoot, inertCLI, "image", "--uki", ukiPath, "--out", img); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "wifi.conf")
	writeFile(t, conf, ssid+"\n"+psk+"\n")
	if err := run(repoRoot, inertCLI, "esp", "set", "--image", img, "--wifi", conf); err != nil {
		t.Fatal(err)
	}
	return img
}

// testAP is the access point of a scenario.
func testAP(t *testing.T, ssid, passphrase string) apconf.Config {
	t.Helper()
	pmk, err := apconf.PMK(passphrase, ssid)
	if err != nil {
		t.Fatal(err)
	}
	return apconf.Config{SSID: ssid, PMK: pmk, Channel: 6, APAddr: netip.MustParsePrefix("192.168.77.1/24"),
		ClientAddr: netip.MustParseAddr("192.168.77.50"), LeaseSeconds: 3600}
}

// wifiBoot boots a stick with wifi.conf (ssid, stickPSK) next to ap, with
// the wired link down.
// It returns the access point's BSSID once it is up.
func wifiBoot(t *testing.T, ap apconf.Config, ssid, stickPSK string) (*harness.VM, *guestDump, string) {
	t.Helper()
	img := wifiStick(t, wifiInitramfs(t, ap), ssid, stickPSK)
	dump, args := newGuestDump(t)
	vm := boot(t, harness.Config{Image: img, ExtraArgs: args})
	// OVMF takes seconds before the kernel starts: the guest never sees a
	// link on the wired NIC until the test says so.
	setLink(t, vm, harness.UserNetID, false)
	return vm, dump, awaitAP(t, vm)
}

func setLink(t *testing.T, vm *harness.VM, id string, up bool) {
	t.Helper()
	if _, err := vm.QMP("set_link", map[string]any{"name": id, "up": up}); err != nil {
		t.Fatal(err)
	}
}

// awaitAP waits for the wrapper's console line saying the access point is
// up, and returns its BSSID; a wrapper failure ends the test at once. The
// serial console has no notification: it is read as the harness does.
func awaitAP(t *testing.T, vm *harness.VM) string {
	t.Helper()
	ready := regexp.MustCompile(regexp.QuoteMeta(apconf.ReadyLine) + `([0-9a-f:]{17})`)
	failed := regexp.MustCompile(regexp.QuoteMeta(apconf.FailedLine) + `.*`)
	deadline := time.Now().Add(bootLimit)
	for {
		serial := vm.SerialText()
		if m := ready.FindStringSubmatch(serial); m != nil {
			return m[1]
		}
		if m := failed.FindString(serial); m != "" {
			t.Fatalf("the test's access point did not come up: %s", m)
		}
		select {
		case <-vm.Done():
			t.Fatal("QEMU exited before the access point came up")
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the wrapper never said the access point was ready")
		}
	}
}

// TestWifiAssociates: with the right PSK inert joins the network through
// wpa_supplicant, gets a lease on wlan0 and makes it the primary network;
// the evidence shows the association; the PSK is nowhere.
func TestWifiAssociates(t *testing.T) {
	t.Parallel()
	const ssid, psk = "inert lab-5", "correct horse 42"
	ap := testAP(t, ssid, psk)
	vm, dump, bssid := wifiBoot(t, ap, ssid, psk)

	primary := awaitEvent(t, vm, bootLimit, "a primary network", func(e appliance.Event) bool {
		return e.Step == "network" && e.Data["iface"] != ""
	})
	if primary.Data["iface"] != "wlan0" || primary.Data["ip"] != ap.ClientAddr.String() || primary.Data["gw"] != ap.APAddr.Addr().String() {
		t.Fatalf("primary network %v, want wlan0 %s via %s", primary.Data, ap.ClientAddr, ap.APAddr.Addr())
	}
	awaitEvent(t, vm, time.Second, "the association status", func(e appliance.Event) bool {
		return e.Step == "network" && e.Message == "WiFi: connected to "+ssid+"."
	})

	setLink(t, vm, harness.UserNetID, true)
	awaitEvent(t, vm, 2*time.Minute, "the wired lease", func(e appliance.Event) bool {
		return e.Step == "network" && e.Message == "eth0: 10.0.2.15 leased; not the main network."
	})
	awaitHealthy(t, vm, bootLimit)
	raw, ev := rawEvidence(t, vm)
	netw := field[map[string]string](t, ev, "network")
	for k, want := range map[string]string{"iface": "wlan0", "ip": "192.168.77.50", "gw": "192.168.77.1", "dns": "192.168.77.1"} {
		if netw[k] != want {
			t.Errorf("primary-net %s=%q, want %q", k, netw[k], want)
		}
	}
	detail := field[netup.NetworkEvidence](t, ev, "network_detail")
	if w := detail.Wifi; w == nil || w.Iface != "wlan0" || w.SSID != ssid || !w.Associated || w.State != "connected" || !strings.EqualFold(w.BSSID, bssid) {
		t.Errorf("WiFi evidence %+v, want wlan0 associated with %q at the access point's BSSID %s", w, ssid, bssid)
	}
	if p := detail.Primary; p == nil || p.Iface != "wlan0" || p.IP != ap.ClientAddr {
		t.Errorf("evidence primary %+v, want wlan0 %s", p, ap.ClientAddr)
	}
	wantIfaces := map[string]netup.InterfaceEvidence{
		"wlan0": {Name: "wlan0", Wireless: true, State: "leased", Carrier: true, Address: "192.168.77.50/24", Router: "192.168.77.1"},
		"eth0":  {Name: "eth0", State: "leased", Carrier: true, Address: "10.0.2.15/24", Router: "10.0.2.2"},
	}
	assertInterfaces(t, detail, wantIfaces)

	files := settledDump(t, dump)
	if got := string(files["run/inert/primary-net"].Data); !strings.Contains(got, "iface=wlan0") {
		t.Errorf("primary-net in the guest: %q", got)
	}
	if got := string(files["etc/resolv.conf"].Data); !strings.Contains(got, "nameserver 192.168.77.1") {
		t.Errorf("resolv.conf in the guest: %q", got)
	}
	assertNoSecret(t, vm, raw, files, psk)
	reportBootTiming(t, vm)
}

// TestWifiRefused: a wrong password and an absent network each say so on
// the status line, the boot goes on, and the service answers through the
// wired NIC once its cable is back.
func TestWifiRefused(t *testing.T) {
	t.Parallel()
	const ssid = "inert lab-7"
	cases := map[string]struct {
		ap        apconf.Config
		stickPSK  string
		status    string
		wifiState string
		neverInVM []string // secrets that must appear nowhere
	}{
		"wrong password": {
			ap: testAP(t, ssid, "the right one 31"), stickPSK: "not the right one",
			status: "WiFi: wrong password for " + ssid + ".", wifiState: "wrong-key",
			neverInVM: []string{"the right one 31", "not the right one"},
		},
		"network not found": {
			ap: testAP(t, "someone else", "their secret 99"), stickPSK: "our secret 1234",
			status: "WiFi: network " + ssid + " not found.", wifiState: "not-found",
			neverInVM: []string{"our secret 1234", "their secret 99"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			vm, dump, _ := wifiBoot(t, tc.ap, ssid, tc.stickPSK)
			awaitEvent(t, vm, bootLimit, "the WiFi status", func(e appliance.Event) bool {
				return e.Step == "network" && e.Status == tc.status
			})
			awaitEvent(t, vm, bootLimit, "the service start", func(e appliance.Event) bool {
				return e.Step == "service" && e.State == appliance.StateStart
			})
			setLink(t, vm, harness.UserNetID, true)
			primary := awaitEvent(t, vm, 2*time.Minute, "a primary network", func(e appliance.Event) bool {
				return e.Step == "network" && e.Data["iface"] != ""
			})
			if primary.Data["iface"] != "eth0" || primary.Data["ip"] != "10.0.2.15" {
				t.Fatalf("primary network %v, want eth0 10.0.2.15", primary.Data)
			}
			awaitHealthy(t, vm, bootLimit)
			raw, ev := rawEvidence(t, vm)
			detail := field[netup.NetworkEvidence](t, ev, "network_detail")
			if w := detail.Wifi; w == nil || w.Associated || w.State != tc.wifiState || w.SSID != ssid {
				t.Errorf("WiFi evidence %+v, want %q not associated", w, tc.wifiState)
			}
			for _, ie := range detail.Interfaces {
				if ie.Name == "wlan0" && ie.Address != "" {
					t.Errorf("wlan0 holds %s without an association", ie.Address)
				}
			}
			files := settledDump(t, dump)
			assertNoSecret(t, vm, raw, files, tc.neverInVM...)
		})
	}
}

func assertInterfaces(t *testing.T, detail netup.NetworkEvidence, want map[string]netup.InterfaceEvidence) {
	t.Helper()
	if len(detail.Interfaces) != len(want) {
		t.Errorf("evidence lists %d interfaces, want %d: %+v", len(detail.Interfaces), len(want), detail.Interfaces)
	}
	for _, ie := range detail.Interfaces {
		w, ok := want[ie.Name]
		if !ok {
			t.Errorf("unexpected interface %+v", ie)
			continue
		}
		ie.Detail, ie.LeaseExpires = "", "" // free text and clock
		if ie != w {
			t.Errorf("interface %s: %+v, want %+v", ie.Name, ie, w)
		}
	}
}

// supplicantSettled reports whether the dump shows wpa_supplicant running
// (so its command line and environment are in the dump) and no config file
// of it left: the one file that holds the PSK, removed once read.
func supplicantSettled(files map[string]dumpFile) (running bool, config string) {
	for name, f := range files {
		if strings.HasPrefix(name, "proc/") && strings.HasSuffix(name, "/cmdline") && bytes.Contains(f.Data, []byte("wpa_supplicant")) {
			running = true
		}
		if strings.HasPrefix(name, "run/") && path.Base(name) == "wpa.conf" {
			config = name
		}
	}
	return running, config
}

// settledDump dumps the guest until the supplicant runs and has read its
// config (the guest cannot signal that; the dump is polled), and checks
// the dump covered the run directory.
func settledDump(t *testing.T, dump *guestDump) map[string]dumpFile {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		files := dump.files(t)
		running, config := supplicantSettled(files)
		if running && config == "" {
			assertRunDirDumped(t, files)
			return files
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 2 minutes: wpa_supplicant running %v, its config file %q still there", running, config)
		}
		time.Sleep(time.Second)
	}
}

func assertRunDirDumped(t *testing.T, files map[string]dumpFile) {
	t.Helper()
	st, ok := files["run/inert/status"]
	if !ok || len(st.Data) == 0 {
		t.Errorf("the dump has no run/inert/status: it did not cover the run dir")
	}
	if nf, ok := files["run/inert/"+appliance.NetworkFile]; !ok || nf.Mode != 0o644 {
		t.Errorf("run/inert/%s missing or not 0644 (%+v)", appliance.NetworkFile, nf.Mode)
	}
}

// assertNoSecret looks for each secret in the serial log, the events, the
// evidence and every file and process line of the guest dump.
func assertNoSecret(t *testing.T, vm *harness.VM, evidenceBody []byte, files map[string]dumpFile, secrets ...string) {
	t.Helper()
	var evLines []byte
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	for line := range vm.Events(ctx) {
		evLines = append(append(evLines, line...), '\n')
	}
	if len(evLines) == 0 || len(evidenceBody) == 0 || len(files) == 0 {
		t.Fatalf("nothing to search: %d event bytes, %d evidence bytes, %d files", len(evLines), len(evidenceBody), len(files))
	}
	serial := []byte(vm.SerialText())
	for _, s := range secrets {
		for where, b := range map[string][]byte{"serial log": serial, "events": evLines, "evidence.json": evidenceBody} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("a PSK appears in the %s", where)
			}
		}
		for name, f := range files {
			if strings.Contains(name, s) || bytes.Contains(f.Data, []byte(s)) {
				t.Errorf("a PSK appears in the guest's /%s", name)
			}
		}
	}
}

// rawEvidence fetches /evidence.json as bytes and decoded.
func rawEvidence(t *testing.T, vm *harness.VM) ([]byte, map[string]json.RawMessage) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/evidence.json", vm.HostPort()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]json.RawMessage
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("evidence.json: %v", err)
	}
	return b, ev
}

// guestDump is the host side of the wrapper's dump port.
type guestDump struct {
	conns chan net.Conn
	once  sync.Once
	conn  net.Conn
	r     *bufio.Reader
}

type dumpFile struct {
	Mode int64
	Data []byte
}

// newGuestDump listens for QEMU's connection to the dump port and returns
// the QEMU arguments that add the port.
func newGuestDump(t *testing.T) (*guestDump, []string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "inert-dump-") // short: sun_path has 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "dump.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	d := &guestDump{conns: make(chan net.Conn, 1)}
	go func() {
		if c, err := ln.Accept(); err == nil {
			d.conns <- c
		}
		ln.Close()
	}()
	t.Cleanup(func() {
		ln.Close()
		if d.conn != nil {
			d.conn.Close()
		}
		os.RemoveAll(dir)
	})
	return d, []string{
		"-chardev", "socket,id=wrapdump,path=" + sock,
		"-device", "virtserialport,bus=vser.0,chardev=wrapdump,name=" + apconf.DumpPort,
	}
}

// files asks the guest for a dump and returns its entries by path.
func (d *guestDump) files(t *testing.T) map[string]dumpFile {
	t.Helper()
	const limit = time.Minute
	d.once.Do(func() {
		select {
		case d.conn = <-d.conns:
		case <-time.After(limit):
			return
		}
		_ = d.conn.SetDeadline(time.Now().Add(limit))
		d.r = bufio.NewReader(d.conn)
		if line, err := d.r.ReadString('\n'); err != nil || strings.TrimSpace(line) != apconf.DumpHello {
			t.Errorf("dump port hello: %q, %v", line, err)
			d.r = nil
		}
	})
	if d.r == nil {
		t.Fatal("the guest's dump port never opened")
	}
	_ = d.conn.SetDeadline(time.Now().Add(limit))
	if _, err := io.WriteString(d.conn, apconf.DumpRequest+"\n"); err != nil {
		t.Fatal(err)
	}
	out := map[string]dumpFile{}
	tr := tar.NewReader(d.r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("dump: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("dump %s: %v", h.Name, err)
		}
		out[strings.TrimSuffix(h.Name, "/")] = dumpFile{Mode: h.Mode, Data: b}
	}
}
