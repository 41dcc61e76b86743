// Package demo is the demo profile's service: a small HTTP server that answers
// the health probe, shows a person what booted, and serves the boot evidence
// read-only as /evidence.json. It reads only what inert left in the run
// directory and the TPM's public state; it writes nothing but its own zone
// file when a zone volume is mounted.
package demo

import (
	"bufio"
	"bytes"
	"encoding/json"
	"html/template"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// Server serves the demo endpoints from the files under RunDir.
type Server struct {
	RunDir string
	// EventLog is the systemd-format measurement log.
	EventLog string
	// ConfigPath is the operator config the service was given.
	ConfigPath string
	// PCRs reads the live PCR banks; nil when there is no TPM support.
	PCRs func() (map[string]map[string]string, error)
	// Extra evidence readers filled by later capabilities (SNP report, zones).
	Extra func() map[string]any
	// SysRoot stands for /sys (tests use a fake tree).
	SysRoot string
	// ZoneDir is where the zone volume is mounted ("" without a zone).
	ZoneDir string
}

func (s *Server) sysRoot() string {
	if s.SysRoot == "" {
		return "/sys"
	}
	return s.SysRoot
}

// Handler returns the HTTP routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /~measurement@1.0/info", s.health)
	mux.HandleFunc("GET /evidence.json", s.evidenceJSON)
	mux.HandleFunc("GET /{$}", s.page)
	return mux
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok","service":"inert-demo"}` + "\n"))
}

// Evidence is the read-only view of the boot.
type Evidence struct {
	Status    string            `json:"status"`
	Events    []json.RawMessage `json:"events"`
	Config    ConfigEvidence    `json:"config"`
	UKISHA256 string            `json:"uki_sha256"`
	UKISource map[string]string `json:"uki_source"`
	TEE       json.RawMessage   `json:"tee"`
	// Network is primary-net (iface, ip, gw, dns); NetworkDetail is the
	// worker's network.json: every link and its state, the primary, and
	// the WiFi association (null before the network step ran).
	Network       map[string]string            `json:"network"`
	NetworkDetail json.RawMessage              `json:"network_detail"`
	PCRs          map[string]map[string]string `json:"pcrs"`
	EventLog      []json.RawMessage            `json:"event_log"`
	Zones         json.RawMessage              `json:"zones"`
	// BlockDevices are the kernel's block devices now: after the detach the
	// boot stick is not among them.
	BlockDevices []string `json:"block_devices"`
	// FirmwareLog is the firmware's binary TCG event log, hex.
	FirmwareLog string `json:"firmware_log"`
	// SNPReport is the boot's SEV-SNP attestation report, when there is one.
	SNPReport json.RawMessage `json:"snp_report,omitempty"`
	Extra     map[string]any  `json:"extra,omitempty"`
	// ZoneFile is the visits counter in the zone volume, when mounted.
	ZoneFile *ZoneEvidence `json:"zone_file,omitempty"`
}

// ConfigEvidence says whether an operator config was accepted.
type ConfigEvidence struct {
	Present bool   `json:"present"`
	SHA256  string `json:"sha256"`
	Path    string `json:"path"`
	Reason  string `json:"reason,omitempty"`
}

// Collect reads the evidence now. Missing files give empty values: a
// capability that is not there is shown as absent, not as an error.
func (s *Server) Collect() Evidence {
	ev := Evidence{
		Status:    strings.TrimSpace(s.read("status")),
		Events:    jsonLines(s.read("events.jsonl")),
		UKISHA256: strings.TrimSpace(s.read("boot-uki-sha256")),
		UKISource: keyValues(s.read("boot-uki-source")),
		TEE:       rawOr(s.read("tee.json"), "{}"),
		Network:   keyValues(s.read("primary-net")),
		// The file name is appliance.NetworkFile; the demo reads files only.
		NetworkDetail: rawOr(s.read("network.json"), "null"),
		PCRs:          map[string]map[string]string{},
		Zones:         rawOr(s.read("zones.json"), "[]"),
	}
	ev.BlockDevices = []string{}
	if ents, err := os.ReadDir(filepath.Join(s.sysRoot(), "class/block")); err == nil {
		for _, e := range ents {
			ev.BlockDevices = append(ev.BlockDevices, e.Name())
		}
	}
	cfg := keyValues(s.read("config-state"))
	ev.Config = ConfigEvidence{Present: cfg["present"] == "yes", SHA256: cfg["sha256"],
		Path: s.ConfigPath, Reason: cfg["reason"]}
	if s.PCRs != nil {
		if p, err := s.PCRs(); err == nil {
			ev.PCRs = p
		}
	}
	if b, err := os.ReadFile(s.EventLog); err == nil {
		ev.EventLog = jsonSeq(b)
	}
	if ev.EventLog == nil {
		ev.EventLog = []json.RawMessage{}
	}
	ev.FirmwareLog = s.firmwareLog()
	ev.SNPReport = s.snpReport()
	if s.Extra != nil {
		ev.Extra = s.Extra()
	}
	ev.ZoneFile = s.zoneEvidence()
	return ev
}

func (s *Server) evidenceJSON(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.Collect())
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>inert demo</title>
<style>body{font-family:sans-serif;max-width:50em;margin:2em auto;color:#222}
code{background:#f3f3f3;padding:0 .3em}td{padding:.2em .8em .2em 0;vertical-align:top}</style></head>
<body><h1>inert demo appliance</h1>
<p>This machine booted a measured, signed image that runs exactly one service: this page.
Nothing on the machine itself accepts input.</p>
<table>
<tr><td>Status</td><td>{{.Status}}</td></tr>
<tr><td>UKI sha256</td><td><code>{{if .UKISHA256}}{{.UKISHA256}}{{else}}unknown (no boot USB){{end}}</code></td></tr>
<tr><td>Operator config</td><td>{{if .Config.Present}}present, sha256 <code>{{.Config.SHA256}}</code>{{else}}none{{end}}</td></tr>
<tr><td>Network</td><td>{{range $k, $v := .Network}}{{$k}}={{$v}} {{end}}</td></tr>
<tr><td>Boot events</td><td>{{len .Events}}</td></tr>
<tr><td>Measurement log</td><td>{{len .EventLog}} records</td></tr>
</table>
<p>The full evidence is at <a href="/evidence.json">/evidence.json</a>.</p>
</body></html>
`))

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTmpl.Execute(w, s.Collect())
}

// read returns a run-dir file, capped at 4 MiB, or "" when absent.
func (s *Server) read(name string) string {
	f, err := os.Open(filepath.Join(s.RunDir, name))
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 4<<20))
	return string(b)
}

// keyValues parses key=value lines.
func keyValues(s string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok && k != "" {
			out[k] = v
		}
	}
	return out
}

func jsonLines(s string) []json.RawMessage {
	out := []json.RawMessage{}
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && json.Valid([]byte(l)) {
			out = append(out, json.RawMessage(l))
		}
	}
	return out
}

// jsonSeq splits an RFC 7464 JSON text sequence (records start with 0x1E).
func jsonSeq(b []byte) []json.RawMessage {
	var out []json.RawMessage
	for _, rec := range bytes.Split(b, []byte{0x1e}) {
		rec = bytes.TrimSpace(rec)
		if len(rec) > 0 && json.Valid(rec) {
			out = append(out, json.RawMessage(append([]byte(nil), rec...)))
		}
	}
	return out
}

func rawOr(s, empty string) json.RawMessage {
	s = strings.TrimSpace(s)
	if s == "" || !json.Valid([]byte(s)) {
		return json.RawMessage(empty)
	}
	return json.RawMessage(s)
}
