package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"inert/initramfs"
)

func init() {
	register("keys", "generate Secure Boot PK, KEK and db keys and enrolment files", runKeys)
}

func runKeys(args []string) error {
	fs := flag.NewFlagSet("keys", flag.ContinueOnError)
	dir := fs.String("dir", "secureboot", "directory for the keys; enrolment files go to <dir>/enrol")
	force := fs.Bool("force", false, "replace existing keys (machines enrolled with the old ones will no longer boot new images)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: inert keys [--dir secureboot] [--force]")
		fs.PrintDefaults()
	}
	if done, err := parseNoArgs(fs, args); done || err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "keys: generating PK, KEK and db (RSA-2048) in %s\n", *dir)
	if err := initramfs.GenerateKeys(*dir, *force); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "keys: private keys %s/{PK,KEK,db}.key (keep them offline)\n", *dir)
	fmt.Fprintf(os.Stderr, "keys: enrolment files in %s\n", filepath.Join(*dir, "enrol"))
	return nil
}
