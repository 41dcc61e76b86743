package boot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadOperatorFiles(t *testing.T) {
	spec := DefaultESPSpec()
	good := `{"port": 8734}`
	wifi := "Home Net\n" + testPSK + "\n"
	for _, tc := range []struct {
		name         string
		files        map[string]string
		wantWifi     bool
		wantConfig   string // accepted bytes, "" for none
		wantCfgPath  string
		wantCfgErr   error
		wantWifiPath string
		wantWifiErr  error
		wantSSID     string
	}{
		{name: "both", files: map[string]string{"EFI/boot/config.json": good, "EFI/boot/wifi.conf": wifi}, wantWifi: true,
			wantConfig: good, wantCfgPath: "/EFI/boot/config.json", wantWifiPath: "/EFI/boot/wifi.conf", wantSSID: "Home Net"},
		{name: "Boot fallback", files: map[string]string{"EFI/Boot/config.json": good, "EFI/Boot/wifi.conf": wifi}, wantWifi: true,
			wantConfig: good, wantCfgPath: "/EFI/Boot/config.json", wantWifiPath: "/EFI/Boot/wifi.conf", wantSSID: "Home Net"},
		{name: "boot wins over Boot", files: map[string]string{"EFI/boot/config.json": good, "EFI/Boot/config.json": `{"other": 1}`},
			wantConfig: good, wantCfgPath: "/EFI/boot/config.json"},
		{name: "wifi not wanted is never read", files: map[string]string{"EFI/boot/wifi.conf": wifi}},
		{name: "absent"},
		{name: "rejected config", files: map[string]string{"EFI/boot/config.json": `{"trusted_devices": 1}`},
			wantCfgPath: "/EFI/boot/config.json", wantCfgErr: ErrConfigRejectedKey},
		{name: "oversized config read capped", files: map[string]string{"EFI/boot/config.json": `{"a":"` + strings.Repeat("x", 70000) + `"}`},
			wantCfgPath: "/EFI/boot/config.json", wantCfgErr: ErrConfigSize},
		{name: "config is a directory", files: map[string]string{"EFI/boot/config.json/x": "1"},
			wantCfgPath: "/EFI/boot/config.json", wantCfgErr: ErrOperatorRead},
		{name: "bad wifi", files: map[string]string{"EFI/boot/wifi.conf": "Home Net\nshort\n"}, wantWifi: true,
			wantWifiPath: "/EFI/boot/wifi.conf", wantWifiErr: ErrWifiPSK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for p, c := range tc.files {
				mustWrite(t, filepath.Join(root, p), c)
			}
			of := ReadOperatorFiles(root, spec, tc.wantWifi)
			if string(of.Config) != tc.wantConfig || of.ConfigPath != tc.wantCfgPath {
				t.Errorf("config %q from %q, want %q from %q", of.Config, of.ConfigPath, tc.wantConfig, tc.wantCfgPath)
			}
			if !errors.Is(of.ConfigErr, tc.wantCfgErr) {
				t.Errorf("ConfigErr = %v, want %v", of.ConfigErr, tc.wantCfgErr)
			}
			if tc.wantCfgPath != "" && tc.wantCfgErr != ErrOperatorRead {
				onDisk, _ := os.ReadFile(filepath.Join(root, tc.wantCfgPath))
				if n := min(len(onDisk), spec.Config.MaxBytes+1); string(of.ConfigRaw) != string(onDisk[:n]) {
					t.Errorf("ConfigRaw is not the first %d bytes of the file", n)
				}
			}
			if of.WifiPath != tc.wantWifiPath || !errors.Is(of.WifiErr, tc.wantWifiErr) {
				t.Errorf("wifi from %q err %v, want %q %v", of.WifiPath, of.WifiErr, tc.wantWifiPath, tc.wantWifiErr)
			}
			if tc.wantSSID == "" && of.Wifi != nil {
				t.Errorf("unexpected wifi credentials for %q", of.Wifi.SSID)
			}
			if tc.wantSSID != "" && (of.Wifi == nil || of.Wifi.SSID != tc.wantSSID || string(of.Wifi.PSK) != testPSK) {
				t.Errorf("wifi = %v, want SSID %q", of.Wifi, tc.wantSSID)
			}
		})
	}
}

func TestWriteFileAtomic(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	p := filepath.Join(dir, "config.json")
	if err := InitConfigOut(p); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, p); got != "{}" {
		t.Fatalf("InitConfigOut wrote %q", got)
	}
	if err := WriteFileAtomic(p, []byte(`{"a":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || readString(t, p) != `{"a":1}` {
		t.Fatalf("mode %v content %q", st.Mode().Perm(), readString(t, p))
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
	// Fault: the directory does not exist. Nothing is created.
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "x"), []byte("{}"), 0o600); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
	// Fault: the target is a directory, so the rename fails; the old
	// content and no temporary file remain.
	target := filepath.Join(dir, "busy")
	mustWrite(t, filepath.Join(target, "keep"), "x")
	if err := WriteFileAtomic(target, []byte("{}"), 0o600); err == nil {
		t.Fatal("rename over a non-empty directory succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Fatalf("after failed write: %v", entries)
	}
}
