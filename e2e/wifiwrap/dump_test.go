package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The dump carries every file's bytes, except the supplicant's config,
// which it lists without opening (netup deletes it on the first close).
func TestWriteDump(t *testing.T) {
	root := t.TempDir()
	run := filepath.Join(root, "run")
	files := map[string]string{
		"run/inert/status":          "Network: 10.0.2.15 on eth0.\n",
		"run/inert/network.json":    `{"interfaces":[]}`,
		"run/inert/.wpa-1/wpa.conf": "network={psk=\"secret\"}\n",
		"proc/42/cmdline":           "/usr/sbin/wpa_supplicant\x00-i\x00wlan0\x00",
		"proc/42/environ":           "PATH=/usr/sbin\x00",
		"proc/self/cmdline":         "not a pid",
		"proc/42/status":            "not dumped",
	}
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("status", filepath.Join(run, "inert", "link")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := writeDump(&buf, []string{run, filepath.Join(root, "missing")}, filepath.Join(root, "proc")); err != nil {
		t.Fatal(err)
	}
	got := map[string]*tar.Header{}
	data := map[string]string{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		name := strings.TrimPrefix("/"+h.Name, root+"/")
		got[name], data[name] = h, string(b)
	}
	for _, name := range []string{"run/inert/status", "run/inert/network.json", "proc/42/cmdline", "proc/42/environ"} {
		if data[name] != files[name] || got[name].Typeflag != tar.TypeReg {
			t.Errorf("%s: %q (type %c), want its contents %q", name, data[name], got[name].Typeflag, files[name])
		}
	}
	if h := got["run/inert/.wpa-1/wpa.conf"]; h == nil || h.Typeflag != tar.TypeFifo || data["run/inert/.wpa-1/wpa.conf"] != "" {
		t.Errorf("the supplicant config was read or not listed: %+v %q", h, data["run/inert/.wpa-1/wpa.conf"])
	}
	if h := got["run/inert/link"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "status" {
		t.Errorf("symlink entry %+v", h)
	}
	for _, name := range []string{"proc/self/cmdline", "proc/42/status"} {
		if _, ok := got[name]; ok {
			t.Errorf("%s dumped", name)
		}
	}
}
