package appliance

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"inert/appliance/profiles"
)

func hyperbeam(t *testing.T) *Manifest {
	t.Helper()
	b, err := profiles.Manifest("hyperbeam")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func envOf(spec *LaunchSpec, key string) string {
	for _, kv := range spec.Env {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v
		}
	}
	return ""
}

func baseConfig(t *testing.T) func(string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join("profiles", "hyperbeam", "lapee.json"))
	if err != nil {
		t.Fatal(err)
	}
	return func(p string) ([]byte, error) {
		if p != "/etc/lapee/lapee.json" {
			return nil, os.ErrNotExist
		}
		return b, nil
	}
}

func TestHyperbeamEnvironmentWithoutHooks(t *testing.T) {
	m := hyperbeam(t)
	wrote := map[string][]byte{}
	spec, err := m.Launch(ServiceInputs{Mode: "prod", ConfigPath: "/tmp/config.json",
		OperatorConfig: []byte(`{"port": 8734}`), ReadFile: baseConfig(t),
		WriteFile: func(p string, b []byte) error { wrote[p] = b; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if got := envOf(spec, "HB_CONFIG"); got != "/tmp/config.json,/etc/lapee/lapee.json" {
		t.Errorf("HB_CONFIG=%q", got)
	}
	if envOf(spec, "ERL_INETRC") != "/etc/erl_inetrc" || envOf(spec, "LAPEE_TPM_TCTI") != "device:/dev/tpm0" {
		t.Errorf("contract variables missing: %v", spec.Env)
	}
	if spec.Dir != "/usr/lib/hyperbeam" || !reflect.DeepEqual(spec.Argv, []string{"/usr/lib/hyperbeam/bin/hb", "foreground"}) {
		t.Errorf("argv %v dir %s", spec.Argv, spec.Dir)
	}
	if spec.Stdio != "null" {
		t.Errorf("prod stdio %q", spec.Stdio)
	}
	if len(wrote) != 0 {
		t.Errorf("merged hooks written without operator hooks: %v", wrote)
	}
}

func TestHyperbeamMergesOperatorHooksFirst(t *testing.T) {
	m := hyperbeam(t)
	wrote := map[string][]byte{}
	op := `{"on": {"start": {"device": "op@1.0", "path": "first"}, "stop": [{"device": "op@1.0", "path": "bye"}]}}`
	spec, err := m.Launch(ServiceInputs{Mode: "debug", ConfigPath: "/tmp/config.json",
		OperatorConfig: []byte(op), ReadFile: baseConfig(t),
		WriteFile: func(p string, b []byte) error { wrote[p] = b; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	want := "/tmp/config.json,/etc/lapee/lapee.json,/run/lapee/on-start-merged.json"
	if got := envOf(spec, "HB_CONFIG"); got != want {
		t.Errorf("HB_CONFIG=%q, want %q", got, want)
	}
	var merged struct {
		On map[string][]map[string]any `json:"on"`
	}
	if err := json.Unmarshal(wrote["/run/lapee/on-start-merged.json"], &merged); err != nil {
		t.Fatal(err)
	}
	start := merged.On["start"]
	if len(start) != 3 || start[0]["device"] != "op@1.0" || start[1]["device"] != "measurement@1.0" || start[2]["device"] != "zone@1.0" {
		t.Errorf("start hooks in the wrong order: %v", start)
	}
	if len(merged.On["stop"]) != 1 {
		t.Errorf("stop hooks: %v", merged.On["stop"])
	}
	if spec.Stdio != "console" {
		t.Errorf("debug stdio %q", spec.Stdio)
	}
}

func TestHooksThatCannotMerge(t *testing.T) {
	m := hyperbeam(t)
	for _, op := range []string{`{"on": 3}`, `{"on": {"start": "x"}}`, `{"on": {"start": [1,}`} {
		_, err := m.Launch(ServiceInputs{Mode: "prod", ConfigPath: "/tmp/config.json",
			OperatorConfig: []byte(op), ReadFile: baseConfig(t),
			WriteFile: func(string, []byte) error { return nil }})
		if !errors.Is(err, ErrHooks) {
			t.Errorf("%s: got %v, want ErrHooks", op, err)
		}
	}
}

func TestBaseConfigContract(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("profiles", "hyperbeam", "lapee.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	for _, forbidden := range []string{"load-remote-devices", "trusted-device-signers"} {
		if _, ok := v[forbidden]; ok {
			t.Errorf("base config must not contain %s", forbidden)
		}
	}
}
