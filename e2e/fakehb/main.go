// Command fakehb stands in for HyperBEAM's `hb foreground` in the
// end-to-end suite. It never goes into a production image. It answers the
// health probe and shows the test what PID 1 gave it: its environment, its
// working directory and the files named in HB_CONFIG. When its release
// directory holds a file "exit-after" (a Go duration), it exits with status 7
// after that long, so the suite can check the hyperbeam exit policy.
package main

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if b, err := os.ReadFile("/usr/lib/hyperbeam/exit-after"); err == nil {
		if d, err := time.ParseDuration(strings.TrimSpace(string(b))); err == nil {
			time.AfterFunc(d, func() { os.Exit(7) })
		}
	}
	http.HandleFunc("GET /~measurement@1.0/info", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"fake":"hb"}`))
	})
	http.HandleFunc("GET /inspect", func(w http.ResponseWriter, r *http.Request) {
		cwd, _ := os.Getwd()
		files := map[string]string{}
		for _, p := range strings.Split(os.Getenv("HB_CONFIG"), ",") {
			if b, err := os.ReadFile(p); err == nil {
				files[p] = string(b)
			}
		}
		for _, p := range []string{"/run/lapee/status", "/run/lapee/boot-uki-sha256", "/run/lapee/boot-uki-source", "/run/lapee/primary-net"} {
			if b, err := os.ReadFile(p); err == nil {
				files[p] = string(b)
			}
		}
		_, tpm := os.Stat("/dev/tpm0")
		json.NewEncoder(w).Encode(map[string]any{
			"env": os.Environ(), "cwd": cwd, "args": os.Args, "files": files, "tpm0": tpm == nil,
		})
	})
	if err := http.ListenAndServe(":8734", nil); err != nil {
		os.Exit(1)
	}
}
