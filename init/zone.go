package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"inert/appliance"
)

// maxZoneSecret caps what --key-file may hold.
const maxZoneSecret = 4096

// runZone is the service-facing multi-call `inert zone open --name N
// --ring-address A --key-file -` (CONTRACTS §3): the service, after a zone
// join, hands over the zone secret (the key file's exact bytes, no newline
// stripped) and inert opens or provisions the zone volume and mounts it.
// It prints the zone's state as JSON on stdout and exits 0 when mounted, 1
// when refused, 2 on bad usage. The secret is read into locked memory,
// never logged, and cleared.
func runZone(args []string) int {
	if len(args) == 0 || args[0] != "open" {
		fmt.Fprintln(os.Stderr, "usage: zone open --name N --ring-address A --key-file -")
		return 2
	}
	fs := flag.NewFlagSet("zone open", flag.ContinueOnError)
	name := fs.String("name", "", "zone name, as the node joined it (required)")
	ring := fs.String("ring-address", "", "ring address; selects ZONE_<prefix> partitions")
	keyFile := fs.String("key-file", "", `file holding the zone secret, "-" for stdin (required)`)
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *name == "" || *keyFile == "" || fs.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "zone open: --name and --key-file are required")
		return 2
	}
	secret, err := readSecret(*keyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "zone open:", err)
		return 2
	}
	defer func() {
		clear(secret)
		_ = unix.Munlock(secret)
	}()
	b, err := os.ReadFile(appliance.ManifestPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "zone open: manifest:", err)
		return 1
	}
	m, err := appliance.ParseManifest(b)
	if err != nil {
		fmt.Fprintln(os.Stderr, "zone open:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	st, err := appliance.OpenServiceZone(ctx, m, "/", *name, *ring, secret)
	out, _ := json.Marshal(st)
	fmt.Println(string(out))
	if err != nil {
		fmt.Fprintln(os.Stderr, "zone open:", err)
		return 1
	}
	return 0
}

// readSecret reads the key file (or stdin) into mlocked memory.
func readSecret(p string) ([]byte, error) {
	r := io.Reader(os.Stdin)
	if p != "-" {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	buf := make([]byte, maxZoneSecret+1)
	_ = unix.Mlock(buf)
	n, err := io.ReadFull(r, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		clear(buf)
		return nil, err
	}
	if n == 0 || n > maxZoneSecret {
		clear(buf)
		return nil, fmt.Errorf("the zone secret must be 1..%d bytes", maxZoneSecret)
	}
	return buf[:n], nil
}
