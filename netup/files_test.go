package netup

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Independent grammar of the files, as a second implementation: every
// line inert writes must match one of these.
var (
	ipv4Re        = `(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}`
	primaryLineRe = []*regexp.Regexp{
		regexp.MustCompile(`^iface=[A-Za-z0-9_.-]{1,15}$`),
		regexp.MustCompile(`^ip=` + ipv4Re + `$`),
		regexp.MustCompile(`^gw=` + ipv4Re + `$`),
		regexp.MustCompile(`^dns=(` + ipv4Re + `(,` + ipv4Re + `){0,2})?$`),
	}
	resolvLineRe = regexp.MustCompile(`^(# written by inert from the primary DHCP lease|nameserver ` + ipv4Re +
		`|search [a-z0-9_-]+(\.[a-z0-9_-]+)*( [a-z0-9_-]+(\.[a-z0-9_-]+)*){0,5})$`)
)

func checkPrimaryNetGrammar(t testing.TB, b []byte) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 4 || !strings.HasSuffix(string(b), "\n") {
		t.Fatalf("primary-net has %d lines: %q", len(lines), b)
	}
	for i, line := range lines {
		if !primaryLineRe[i].MatchString(line) {
			t.Fatalf("primary-net line %d %q breaks the grammar", i+1, line)
		}
	}
}

func checkResolvGrammar(t testing.TB, b []byte) {
	t.Helper()
	if countLines(b) > 1+maxNameservers+1 {
		t.Fatalf("resolv.conf has %d lines: %q", countLines(b), b)
	}
	if len(b) > 0 && !strings.HasSuffix(string(b), "\n") {
		t.Fatalf("resolv.conf does not end in a newline: %q", b)
	}
	for line := range strings.SplitSeq(strings.TrimSuffix(string(b), "\n"), "\n") {
		if !resolvLineRe.MatchString(line) {
			t.Fatalf("resolv.conf line %q breaks the grammar", line)
		}
		if strings.HasPrefix(line, "search ") && len(line) > maxSearchChars {
			t.Fatalf("search line is %d characters", len(line))
		}
	}
}

func TestPrimaryNetRoundTrip(t *testing.T) {
	p := Primary{Iface: "enp0s3", IP: netip.MustParseAddr("10.0.2.15"), Gateway: netip.MustParseAddr("10.0.2.2"),
		DNS: []netip.Addr{netip.MustParseAddr("10.0.2.3"), netip.MustParseAddr("1.1.1.1")}}
	dir := t.TempDir()
	must(t, WritePrimaryNet(dir, p))
	b, err := os.ReadFile(filepath.Join(dir, PrimaryNetFile))
	must(t, err)
	checkPrimaryNetGrammar(t, b)
	if !strings.Contains(string(b), "\ndns=10.0.2.3,1.1.1.1\n") {
		t.Fatalf("dns is not comma-separated: %q", b)
	}
	back, err := ParsePrimaryNet(b)
	must(t, err)
	if back.Iface != p.Iface || back.IP != p.IP || back.Gateway != p.Gateway || !slices.Equal(back.DNS, p.DNS) {
		t.Fatalf("round trip: %+v != %+v", back, p)
	}
	fi, err := os.Stat(filepath.Join(dir, PrimaryNetFile))
	must(t, err)
	if fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", fi.Mode())
	}
	must(t, RemovePrimaryNet(dir))
	must(t, RemovePrimaryNet(dir)) // already gone is fine
	if _, err := os.Stat(filepath.Join(dir, PrimaryNetFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("primary-net not removed")
	}
}

func TestPrimaryNetRefusesHostileValues(t *testing.T) {
	good := Primary{Iface: "eth0", IP: netip.MustParseAddr("10.0.2.15"), Gateway: netip.MustParseAddr("10.0.2.2")}
	cases := map[string]func(p *Primary){
		"newline in iface":  func(p *Primary) { p.Iface = "eth0\ngw=6.6.6.6" },
		"space in iface":    func(p *Primary) { p.Iface = "eth 0" },
		"long iface":        func(p *Primary) { p.Iface = strings.Repeat("e", 16) },
		"empty iface":       func(p *Primary) { p.Iface = "" },
		"ipv6 ip":           func(p *Primary) { p.IP = netip.MustParseAddr("fe80::1") },
		"zero ip":           func(p *Primary) { p.IP = netip.Addr{} },
		"broadcast gw":      func(p *Primary) { p.Gateway = netip.MustParseAddr("255.255.255.255") },
		"loopback gw":       func(p *Primary) { p.Gateway = netip.MustParseAddr("127.0.0.1") },
		"multicast dns":     func(p *Primary) { p.DNS = []netip.Addr{netip.MustParseAddr("224.0.0.1")} },
		"four nameservers":  func(p *Primary) { p.DNS = make([]netip.Addr, 4) },
		"mapped ipv4 in v6": func(p *Primary) { p.IP = netip.MustParseAddr("::ffff:10.0.2.15") },
	}
	for name, breakIt := range cases {
		p := good
		breakIt(&p)
		if _, err := FormatPrimaryNet(p); !errors.Is(err, ErrBadValue) {
			t.Errorf("%s: got %v, want ErrBadValue", name, err)
		}
	}
	if _, err := FormatPrimaryNet(good); err != nil {
		t.Fatalf("good primary refused: %v", err)
	}
}

func TestParsePrimaryNetRejects(t *testing.T) {
	cases := map[string]string{
		"empty":        "",
		"three lines":  "iface=eth0\nip=10.0.2.15\ngw=10.0.2.2\n",
		"extra line":   "iface=eth0\nip=10.0.2.15\ngw=10.0.2.2\ndns=\nx=1\n",
		"order":        "ip=10.0.2.15\niface=eth0\ngw=10.0.2.2\ndns=\n",
		"bad dns":      "iface=eth0\nip=10.0.2.15\ngw=10.0.2.2\ndns=10.0.2.3;rm\n",
		"no newline":   "iface=eth0\nip=10.0.2.15\ngw=10.0.2.2\ndns=",
		"space in dns": "iface=eth0\nip=10.0.2.15\ngw=10.0.2.2\ndns=10.0.2.3, 1.1.1.1\n",
	}
	for name, in := range cases {
		if _, err := ParsePrimaryNet([]byte(in)); !errors.Is(err, ErrParse) {
			t.Errorf("%s: got %v, want ErrParse", name, err)
		}
	}
}

func TestResolvConfSanitises(t *testing.T) {
	r := Resolver{
		Nameservers: []netip.Addr{
			netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("10.0.2.3"), netip.MustParseAddr("10.0.2.3"),
			netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("127.0.0.1"),
			netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("9.9.9.9"),
		},
		Search: []string{"Example.COM.", "evil\nnameserver 6.6.6.6", "a..b", "-bad.example", "ok.example", "example.com",
			strings.Repeat("x", 64) + ".example"},
	}
	b := FormatResolvConf(r)
	checkResolvGrammar(t, b)
	back, err := ParseResolvConf(b)
	must(t, err)
	wantNS := []netip.Addr{netip.MustParseAddr("10.0.2.3"), netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("1.1.1.1")}
	if !slices.Equal(back.Nameservers, wantNS) {
		t.Fatalf("nameservers %v, want the first three valid distinct %v", back.Nameservers, wantNS)
	}
	if !slices.Equal(back.Search, []string{"example.com", "ok.example"}) {
		t.Fatalf("search %q", back.Search)
	}
	path := filepath.Join(t.TempDir(), "resolv.conf")
	must(t, WriteResolvConf(path, r))
	onDisk, err := os.ReadFile(path)
	must(t, err)
	if string(onDisk) != string(b) {
		t.Fatal("WriteResolvConf wrote something else than FormatResolvConf")
	}
}

func TestSearchLimits(t *testing.T) {
	var many []string
	for i := range 10 {
		many = append(many, strings.Repeat(string(rune('a'+i)), 60)+".example")
	}
	got := sanitiseSearch(many)
	line := "search " + strings.Join(got, " ")
	if len(got) > maxSearchDomains || len(line) > maxSearchChars || len(got) == 0 {
		t.Fatalf("%d domains, %d characters", len(got), len(line))
	}
}
