package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"inert/appliance"
	"inert/appliance/profiles"
	"inert/initramfs"
	"inert/kernel"
)

func init() {
	register("initramfs", "build a reproducible initramfs for a profile", runInitramfs)
}

func runInitramfs(args []string) error {
	fs := flag.NewFlagSet("initramfs", flag.ContinueOnError)
	profile := fs.String("profile", "", "shipped profile to build ("+fmt.Sprint(profiles.Names())+"); default "+profiles.Default)
	manifestPath := fs.String("manifest", "", "appliance manifest file (instead of --profile)")
	initBin := fs.String("init", "build/bin/init", "static inert binary to install as /init")
	out := fs.String("out", "", "output file (default build/initramfs-<profile>.cpio.<compression>)")
	kver := fs.String("kernel-version", "", "kernel release whose modules to include (default: newest in /boot with modules)")
	compression := fs.String("compression", initramfs.CompressZstd, "zstd, gzip or none")
	root := fs.String("root", ".", "repository root that payload sources are relative to")
	bootDir := fs.String("boot-dir", "/boot", "where vmlinuz-<version> and config-<version> are")
	modulesRoot := fs.String("modules-root", "/lib/modules", "where <version>/modules.dep is")
	if done, err := parseNoArgs(fs, args); done || err != nil {
		return err
	}
	if *profile != "" && *manifestPath != "" {
		return errors.New("give --profile or --manifest, not both")
	}
	name := *profile
	var manifest []byte
	var err error
	if *manifestPath != "" {
		if manifest, err = os.ReadFile(*manifestPath); err != nil {
			return err
		}
		m, err := appliance.ParseManifest(manifest)
		if err != nil {
			return fmt.Errorf("%s: %w", *manifestPath, err)
		}
		name = m.Name
	} else {
		if name == "" {
			name = profiles.Default
		}
		if manifest, err = profiles.Manifest(name); err != nil {
			return err
		}
	}

	var k kernel.Kernel
	if *kver != "" {
		k, err = kernel.Find(*bootDir, *modulesRoot, *kver)
	} else {
		k, err = kernel.Installed(*bootDir, *modulesRoot)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "initramfs: kernel %s (%s)\n", k.Version, k.ModulesDir)
	if k.Config == "" {
		fmt.Fprintf(os.Stderr, "initramfs: warning: kernel %s has no config to check\n", k.Version)
	} else {
		for _, p := range kernel.Check(k.Config, kernel.Requirements) {
			fmt.Fprintf(os.Stderr, "initramfs: warning: kernel %s: %s\n", k.Version, p)
		}
	}

	if *out == "" {
		ext := ".cpio"
		if *compression != initramfs.CompressNone {
			ext += "." + map[string]string{initramfs.CompressZstd: "zst", initramfs.CompressGzip: "gz"}[*compression]
		}
		*out = filepath.Join("build", "initramfs-"+name+ext)
	}
	fmt.Fprintf(os.Stderr, "initramfs: building %s with /init from %s\n", name, *initBin)
	res, err := initramfs.Build(initramfs.Options{
		Manifest:    manifest,
		InitBinary:  *initBin,
		RepoRoot:    *root,
		Kernel:      k,
		Compression: *compression,
	})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	tmp := *out + ".tmp"
	if err := os.WriteFile(tmp, res.Archive, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, *out); err != nil {
		os.Remove(tmp)
		return err
	}
	fmt.Fprintf(os.Stderr, "initramfs: %d entries, %d modules, %d bytes uncompressed\n", res.Files, len(res.Modules), res.Uncompressed)
	fmt.Printf("sha256 %s  %s\n", res.SHA256, *out)
	fmt.Printf("size %d\n", len(res.Archive))
	return nil
}
