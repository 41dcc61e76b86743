package apconf

import (
	"bytes"
	"errors"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// PMK agrees with wpa_passphrase, the supplicant's own tool.
func TestPMKMatchesWpaPassphrase(t *testing.T) {
	for _, tc := range []struct{ ssid, pass string }{
		{"inert lab", "correct horse 42"},
		{"x", "12345678"},
		{"a-32-character-ssid-0123456789ab", strings.Repeat("z", 63)},
	} {
		out, err := exec.Command("wpa_passphrase", tc.ssid, tc.pass).Output()
		if err != nil {
			t.Fatalf("wpa_passphrase: %v", err)
		}
		m := regexp.MustCompile(`(?m)^\s*psk=([0-9a-f]{64})$`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("wpa_passphrase printed no psk:\n%s", out)
		}
		got, err := PMK(tc.pass, tc.ssid)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(m[1]) {
			t.Errorf("PMK(%q, %q) = %s, wpa_passphrase says %s", tc.pass, tc.ssid, got, m[1])
		}
	}
}

func goodConfig() Config {
	return Config{SSID: "lab", PMK: strings.Repeat("ab", 32), Channel: 6,
		APAddr: netip.MustParsePrefix("192.168.77.1/24"), ClientAddr: netip.MustParseAddr("192.168.77.50"), LeaseSeconds: 600}
}

func TestParse(t *testing.T) {
	good := goodConfig()
	b, err := good.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(bytes.NewReader(b))
	if err != nil || *back != good {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	for name, mutate := range map[string]func(*Config){
		"empty ssid":       func(c *Config) { c.SSID = "" },
		"long ssid":        func(c *Config) { c.SSID = strings.Repeat("s", 33) },
		"newline in ssid":  func(c *Config) { c.SSID = "lab\nwpa=0" },
		"short pmk":        func(c *Config) { c.PMK = "abcd" },
		"pmk not hex":      func(c *Config) { c.PMK = strings.Repeat("zz", 32) },
		"channel 0":        func(c *Config) { c.Channel = 0 },
		"channel 14":       func(c *Config) { c.Channel = 14 },
		"ipv6 ap":          func(c *Config) { c.APAddr = netip.MustParsePrefix("fd00::1/64") },
		"host prefix":      func(c *Config) { c.APAddr = netip.MustParsePrefix("192.168.77.1/32") },
		"client outside":   func(c *Config) { c.ClientAddr = netip.MustParseAddr("10.0.0.5") },
		"client is the ap": func(c *Config) { c.ClientAddr = netip.MustParseAddr("192.168.77.1") },
		"lease too short":  func(c *Config) { c.LeaseSeconds = 5 },
		"client unset":     func(c *Config) { c.ClientAddr = netip.Addr{} },
		"ap address unset": func(c *Config) { c.APAddr = netip.Prefix{} },
	} {
		t.Run(name, func(t *testing.T) {
			c := goodConfig()
			mutate(&c)
			if _, err := c.Marshal(); !errors.Is(err, ErrConfig) {
				t.Errorf("Marshal: %v, want ErrConfig", err)
			}
		})
	}
	for name, in := range map[string]string{
		"unknown field": `{"ssid":"lab","extra":1}`,
		"not json":      `ssid=lab`,
		"empty":         ``,
	} {
		if _, err := Parse(strings.NewReader(in)); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: Parse: %v, want ErrConfig", name, err)
		}
	}
}

// hostapd.conf has one key per line and names the interface, SSID, key.
func TestHostapd(t *testing.T) {
	c := goodConfig()
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(c.Hostapd("wlan1"))), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("line %q is not key=value", line)
		}
		if _, dup := got[k]; dup {
			t.Fatalf("key %s twice", k)
		}
		got[k] = v
	}
	for k, want := range map[string]string{"interface": "wlan1", "ssid": c.SSID, "wpa_psk": c.PMK, "wpa": "2", "channel": "6"} {
		if got[k] != want {
			t.Errorf("%s=%q, want %q", k, got[k], want)
		}
	}
}

func FuzzParse(f *testing.F) {
	c := goodConfig()
	b, _ := c.Marshal()
	f.Add(b)
	f.Add([]byte(`{"ssid":"a","pmk":"","channel":1}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := Parse(bytes.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v is not ErrConfig", err)
			}
			return
		}
		if strings.Count(string(c.Hostapd("wlan1")), "\n") != 10 {
			t.Fatalf("accepted settings render extra lines: %q", c.Hostapd("wlan1"))
		}
	})
}
