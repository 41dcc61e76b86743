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
		fmt.Fprintln(fs.Output(), "usage: inert expect [flags] IMAGE_OR_UKI\n\nPrints JSON: PCR 7, 9, 11, 12 per bank (as OVMF with swtpm produces them),\nPCR 11 after each phase, and the UKI's Authenticode digests for replaying\nPCR 4 from the firmware log.\n\nflags:")
		fs.PrintDefaults()
	}
	banks := fs.String("banks", "sha1,sha256,sha384,sha512", "comma-separated PCR banks to predict")
	predict := predictionFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("expected exactly one IMAGE_OR_UKI argument")
	}
	var bankList []measure.Bank
	for _, name := range strings.Split(*banks, ",") {
		b, err := measure.BankByName(strings.TrimSpace(name))
		if err != nil {
			return err
		}
		bankList = append(bankList, b)
	}
	res, src, err := predict(fs.Arg(0), bankList)
	if err != nil {
		return err
	}
	out := struct {
		Source string `json:"source"`
		*expect.Result
	}{src, res}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// predictionFlags adds the flags that describe the boot to predict
// (--config, --wifi, --secure-boot) and returns the function that predicts
// it for an image or UKI once the flags are parsed.
func predictionFlags(fs *flag.FlagSet) func(image string, banks []measure.Bank) (*expect.Result, string, error) {
	configPath := fs.String("config", "", "operator config.json the ESP carries (default: none)")
	wifi := fs.Bool("wifi", false, "WiFi credentials are present and used")
	secureBoot := fs.String("secure-boot", "", "Secure Boot key directory (enrol/{PK,KEK,db}.esl) enrolled in the firmware; default: Secure Boot off, nothing enrolled")
	return func(image string, banks []measure.Bank) (*expect.Result, string, error) {
		opts := expect.Options{Wifi: *wifi, Banks: banks}
		if *configPath != "" {
			cfg, err := os.ReadFile(*configPath)
			if err != nil {
				return nil, "", fmt.Errorf("read config: %w", err)
			}
			opts.Config, opts.HasConfig = cfg, true
		}
		if *secureBoot != "" {
			sb, err := expect.LoadSecureBoot(*secureBoot)
			if err != nil {
				return nil, "", err
			}
			opts.SecureBoot = &sb
		}
		fmt.Fprintf(os.Stderr, "reading UKI from %s\n", image)
		uki, src, err := expect.LoadUKI(image)
		if err != nil {
			return nil, "", err
		}
		res, err := expect.Predict(uki, opts)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", src, err)
		}
		return res, src, nil
	}
}
