package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"inert/initramfs"
)

func init() {
	register("image", "build the GPT/FAT32 boot stick image around a UKI", runImage)
}

func runImage(args []string) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	ukiPath := fs.String("uki", "", "the (signed) UKI to boot")
	out := fs.String("out", "", "output image, e.g. build/images/inert-demo.img")
	espMiB := fs.Int64("esp-size", 0, "ESP size in MiB (default: UKI plus slack, at least 64)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: inert image --uki F --out IMG [--esp-size MiB]")
		fs.PrintDefaults()
	}
	if done, err := parseNoArgs(fs, args); done || err != nil {
		return err
	}
	if *ukiPath == "" || *out == "" {
		return errors.New("--uki and --out are required")
	}
	if *espMiB < 0 {
		return errors.New("--esp-size must be positive")
	}
	uki, err := os.ReadFile(*ukiPath)
	if err != nil {
		return err
	}
	return initramfs.BuildImage(initramfs.ImageOptions{UKI: uki, Out: *out, ESPSize: *espMiB << 20, Progress: os.Stderr})
}
