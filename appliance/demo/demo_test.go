package demo

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestEvidenceFromRunDir(t *testing.T) {
	run := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(run, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("status", "Starting the demo service.\n")
	write("events.jsonl", `{"step":"esp","state":"ok"}`+"\nnot json\n"+`{"step":"detach","state":"ok"}`+"\n")
	write("config-state", "present=yes\nsha256=abc\n")
	write("primary-net", "iface=eth0\nip=10.0.2.15\ngw=10.0.2.2\ndns=10.0.2.3\n")
	write("tee.json", `{"tpm":true}`)
	log := filepath.Join(t.TempDir(), "tpm2-measure.log")
	if err := os.WriteFile(log, []byte("\x1e{\"pcr\":11}\n\x1e{\"pcr\":12}\n\x1egarbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer((&Server{RunDir: run, EventLog: log, ConfigPath: "/tmp/config.json"}).Handler())
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/~measurement@1.0/info")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health: %v %v", err, resp)
	}
	resp, err = http.Get(srv.URL + "/evidence.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"status", "events", "config", "uki_sha256", "tee", "network", "pcrs", "event_log", "zones"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("evidence lacks %q", k)
		}
	}
	var ev Evidence
	b, _ := json.Marshal(raw)
	_ = json.Unmarshal(b, &ev)
	if ev.Status != "Starting the demo service." || len(ev.Events) != 2 || !ev.Config.Present ||
		ev.Network["ip"] != "10.0.2.15" || len(ev.EventLog) != 2 || ev.Config.Path != "/tmp/config.json" {
		t.Errorf("evidence %+v", ev)
	}
	resp, err = http.Get(srv.URL + "/nope")
	if err != nil || resp.StatusCode != 404 {
		t.Errorf("unknown path: %v %v", err, resp.StatusCode)
	}
}
