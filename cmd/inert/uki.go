package main

import (
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"inert/kernel"
	"os"
	"path/filepath"

	"inert/boot"
	"inert/initramfs"
)

func init() {
	register("uki", "assemble (and sign) a unified kernel image", runUKI)
}

// ukiDefaultStub is Debian's systemd-boot-efi stub (systemd 252).
const ukiDefaultStub = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

// ukiDefaultOSRel identifies the image to the stub and to boot menus. It
// carries nothing that changes between builds.
const ukiDefaultOSRel = "NAME=\"inert\"\nID=inert\nPRETTY_NAME=\"inert appliance\"\n"

func runUKI(args []string) error {
	fs := flag.NewFlagSet("uki", flag.ContinueOnError)
	kernelPath := fs.String("kernel", "", "kernel bzImage (default: the newest installed Debian kernel)")
	initrdPath := fs.String("initramfs", "", "initramfs file")
	cmdline := fs.String("cmdline", "", "kernel command line baked into the UKI")
	osrelPath := fs.String("osrel", "", "os-release file for .osrel (default: a small inert one)")
	stubPath := fs.String("stub", ukiDefaultStub, "systemd EFI stub")
	signDir := fs.String("sign-dir", "", "sign with <dir>/db.key and db.crt (see inert keys); empty: unsigned")
	out := fs.String("out", "", "output UKI, e.g. build/inert-demo.efi")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: inert uki [--kernel VMLINUZ] --initramfs F --cmdline \"...\" [--osrel F] [--stub F] [--sign-dir secureboot] --out F")
		fs.PrintDefaults()
	}
	if done, err := parseNoArgs(fs, args); done || err != nil {
		return err
	}
	if *kernelPath == "" {
		// The kernel the initramfs's modules were built for by default.
		k, err := kernel.Installed("/boot", "/lib/modules")
		if err != nil {
			return fmt.Errorf("no --kernel given and %w", err)
		}
		*kernelPath = k.Vmlinuz
	}
	if *initrdPath == "" || *out == "" {
		return errors.New("--initramfs and --out are required")
	}
	stub, err := os.ReadFile(*stubPath)
	if err != nil {
		return fmt.Errorf("stub: %w", err)
	}
	linux, err := os.ReadFile(*kernelPath)
	if err != nil {
		return err
	}
	release, err := initramfs.KernelRelease(linux)
	if err != nil {
		return fmt.Errorf("%s: %w", *kernelPath, err)
	}
	initrd, err := os.ReadFile(*initrdPath)
	if err != nil {
		return err
	}
	osrel := []byte(ukiDefaultOSRel)
	if *osrelPath != "" {
		if osrel, err = os.ReadFile(*osrelPath); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "uki: kernel %s (%d bytes), initramfs %d bytes, cmdline %q\n", release, len(linux), len(initrd), *cmdline)
	img, err := initramfs.AssembleUKI(stub, initramfs.UKISections{
		OSRel: osrel, Cmdline: []byte(*cmdline), Uname: []byte(release), Initrd: initrd, Linux: linux,
	})
	if err != nil {
		return err
	}
	if *signDir != "" {
		s, err := initramfs.LoadSigner(*signDir)
		if err != nil {
			return err
		}
		if img, err = initramfs.SignPE(img, s.Key, s.Cert); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "uki: signed with %q\n", s.Cert.Subject.CommonName)
	} else {
		fmt.Fprintln(os.Stderr, "uki: unsigned (no --sign-dir); Secure Boot will refuse it")
	}
	digest, err := initramfs.AuthenticodeDigest(img)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	if err := boot.WriteFileAtomic(*out, img, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "uki: wrote %s (%d bytes)\nuki: sha256 %x\nuki: authenticode sha256 %x\n", *out, len(img), sha256.Sum256(img), digest)
	return nil
}
