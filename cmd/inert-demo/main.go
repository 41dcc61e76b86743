// Command inert-demo is the demo profile's service (see package
// inert/appliance/demo). PID 1 starts it with INERT_RUN_DIR, INERT_LISTEN and
// INERT_CONFIG set by the manifest.
package main

import (
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"inert/appliance/demo"
	"inert/boot/measure"
)

func main() {
	runDir := envOr("INERT_RUN_DIR", "/run/inert")
	listen := envOr("INERT_LISTEN", ":8734")
	cfg, _, _ := strings.Cut(os.Getenv("INERT_CONFIG"), ",")
	s := &demo.Server{RunDir: runDir, EventLog: measure.LogPath, ConfigPath: cfg,
		PCRs: func() (map[string]map[string]string, error) {
			if _, err := os.Stat(measure.DevicePath); err != nil {
				return nil, err
			}
			v, err := measure.ReadPCRs(measure.DevicePath)
			if err != nil {
				return nil, err
			}
			return v.Hex(), nil
		}}
	if s.ZoneDir = os.Getenv("INERT_ZONE_DIR"); s.ZoneDir != "" {
		if n, err := demo.CountVisit(s.ZoneDir); err != nil {
			log.Printf("zone: %v", err)
		} else {
			log.Printf("zone: visit %d", n)
		}
	}
	srv := &http.Server{Addr: listen, Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	exitAfter(os.Getenv("INERT_DEMO_EXIT_AFTER"), os.Getenv("INERT_DEMO_EXIT_STATUS"))
	log.Fatal(srv.ListenAndServe())
}

// exitAfter makes the service exit on its own after a while with a given
// status. It is set only by the end-to-end suite's test profile (in the
// measured manifest), to prove PID 1's exit policy.
func exitAfter(after, status string) {
	d, err := time.ParseDuration(after)
	if err != nil || d <= 0 {
		return
	}
	code, err := strconv.Atoi(status)
	if err != nil {
		code = 1
	}
	time.AfterFunc(d, func() { os.Exit(code) })
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
