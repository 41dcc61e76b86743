package display

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// primaryNetFile is written by the network step: lines iface= ip= gw= dns=.
const primaryNetFile = "primary-net"

// healthProbe asks the service, on loopback, whether it serves. It is the
// splash's job, not PID 1's, so a hung service can only ever hang this.
type healthProbe struct {
	client *http.Client
}

func newHealthProbe(timeout time.Duration) *healthProbe {
	return &healthProbe{client: &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:             nil, // loopback only, whatever the environment says
			DisableKeepAlives: true,
		},
		// A redirect is not a 200 from the service itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// healthURL is http://127.0.0.1:<port><path>, or "" if the state asks for
// no probe (port out of range).
func healthURL(port int, path string) string {
	if port <= 0 || port > 65535 {
		return ""
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return "http://127.0.0.1:" + strconv.Itoa(port) + path
}

// healthy reports whether GET url answers 200 within the timeout.
func (p *healthProbe) healthy(ctx context.Context, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// primaryIP reads the ip= line of <runDir>/primary-net. Absent file, absent
// line or anything that is not a usable address: ok is false.
func primaryIP(runDir string) (addr netip.Addr, ok bool) {
	if runDir == "" {
		return netip.Addr{}, false
	}
	data, err := readSmallFile(filepath.Join(runDir, primaryNetFile), 4096)
	if err != nil {
		return netip.Addr{}, false
	}
	return parsePrimaryIP(data)
}

// parsePrimaryIP finds the first ip= line; a /prefix suffix is allowed.
func parsePrimaryIP(data []byte) (netip.Addr, bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		value, found := strings.CutPrefix(strings.TrimSpace(sc.Text()), "ip=")
		if !found {
			continue
		}
		value, _, _ = strings.Cut(value, "/")
		addr, err := netip.ParseAddr(value)
		if err != nil || addr.Zone() != "" || addr.IsUnspecified() || addr.IsLoopback() || addr.IsMulticast() {
			return netip.Addr{}, false
		}
		return addr.Unmap(), true
	}
	return netip.Addr{}, false
}

// serviceURL is what a phone on the same network opens: http://<ip>:<port>/.
func serviceURL(addr netip.Addr, port int) string {
	return "http://" + netip.AddrPortFrom(addr, uint16(port)).String() + "/"
}
