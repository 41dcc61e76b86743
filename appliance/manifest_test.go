package appliance

import (
	"errors"
	"strings"
	"testing"

	"inert/appliance/profiles"
)

func TestShippedProfilesAreValid(t *testing.T) {
	for _, name := range profiles.Names() {
		b, err := profiles.Manifest(name)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ParseManifest(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.Name != name {
			t.Errorf("profile file %s.json names itself %q", name, m.Name)
		}
	}
}

func TestManifestRejects(t *testing.T) {
	good, _ := profiles.Manifest("demo")
	cases := map[string]func(string) string{
		"unknown field": func(s string) string {
			return strings.Replace(s, `"coldplug": true`, `"coldplug": true, "colplug": true`, 1)
		},
		"trailing data": func(s string) string { return s + "{}" },
		"bad require":   func(s string) string { return strings.Replace(s, `"require": "none"`, `"require": "sgx"`, 1) },
		"relative argv": func(s string) string {
			return strings.Replace(s, `["/usr/lib/inert/demo/inert-demo"]`, `["inert-demo"]`, 1)
		},
		"bad on_exit":       func(s string) string { return strings.Replace(s, `"on_exit": "park"`, `"on_exit": "loop"`, 1) },
		"two verbs":         func(s string) string { return strings.Replace(s, `status %d.`, `status %d %s.`, 1) },
		"run dir elsewhere": func(s string) string { return strings.Replace(s, `"run_dir": "/run/inert"`, `"run_dir": "/tmp/x"`, 1) },
		"missing word":      func(s string) string { return strings.Replace(s, `"ready": "READY", `, ``, 1) },
		"unknown mode":      func(s string) string { return strings.Replace(s, `"debug": {`, `"rescue": {`, 1) },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			in := mutate(string(good))
			if in == string(good) {
				t.Fatal("mutation did not apply")
			}
			if _, err := ParseManifest([]byte(in)); !errors.Is(err, ErrManifest) {
				t.Fatalf("got %v, want ErrManifest", err)
			}
		})
	}
}
