package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"inert/boot/measure"
	"inert/boot/measure/expect"
)

func init() {
	register("expect", "predict the PCR values a boot of an image or UKI produces", runExpect)
}

func runExpect(args []string) error {
	fs := flag.NewFlagSet("expect", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: inert expect [flags] IMAGE_OR_UKI\n\nPrints JSON: PCR 9, 11, 12 per bank, PCR 11 after each phase, and the UKI's\nAuthenticode digests for replaying PCR 4 from the firmware log.\n\nflags:")
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "operator config.json the ESP will carry (default: none)")
	wifi := fs.Bool("wifi", false, "WiFi credentials will be present and used")
	banks := fs.String("banks", "sha1,sha256,sha384,sha512", "comma-separated PCR banks to predict")
	secureBoot := fs.String("secure-boot", "", "Secure Boot key directory (PCR 7 prediction is not implemented yet)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("expected exactly one IMAGE_OR_UKI argument")
	}
	opts := expect.Options{Wifi: *wifi}
	for _, name := range strings.Split(*banks, ",") {
		b, err := measure.BankByName(strings.TrimSpace(name))
		if err != nil {
			return err
		}
		opts.Banks = append(opts.Banks, b)
	}
	if *configPath != "" {
		cfg, err := os.ReadFile(*configPath)
		if err != nil {
			return fmt.Errorf("read config: %w", err)
		}
		opts.Config, opts.HasConfig = cfg, true
	}
	fmt.Fprintf(os.Stderr, "reading UKI from %s\n", fs.Arg(0))
	uki, src, err := expect.LoadUKI(fs.Arg(0))
	if err != nil {
		return err
	}
	res, err := expect.Predict(uki, opts)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if *secureBoot != "" {
		res.Notes = append(res.Notes, "--secure-boot "+*secureBoot+" given, but PCR 7 is not predicted yet")
	}
	out := struct {
		Source string `json:"source"`
		*expect.Result
	}{src, res}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
