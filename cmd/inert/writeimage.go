package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"inert/initramfs"
)

func init() {
	register("write-image", "write a disk image to a USB stick (with safety checks)", runWriteImage)
}

func runWriteImage(args []string) error {
	fs := flag.NewFlagSet("write-image", flag.ContinueOnError)
	dev := fs.String("dev", "", "whole removable disk, e.g. /dev/sdb or /dev/disk/by-id/usb-...")
	image := fs.String("image", "", "disk image built by inert image")
	yes := fs.Bool("yes", false, "do not ask to type the device name (the safety checks still run)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: inert write-image --dev /dev/sdX --image IMG [--yes]")
		fmt.Fprintln(fs.Output(), "Refuses partitions, internal (non-removable, non-USB) disks, mounted, swap or")
		fmt.Fprintln(fs.Output(), "device-mapper-held disks and the disk holding / or /boot.")
		fs.PrintDefaults()
	}
	if done, err := parseNoArgs(fs, args); done || err != nil {
		return err
	}
	if *dev == "" || *image == "" {
		return errors.New("--dev and --image are required")
	}
	fi, err := os.Stat(*image)
	if err != nil {
		return err
	}
	target, err := initramfs.HostBlockDevices().CheckWriteTarget(*dev)
	if err != nil {
		return err
	}
	if fi.Size() > target.Size {
		return fmt.Errorf("%w: image %d MiB, %s %d MiB", initramfs.ErrDiskTooSmall, fi.Size()>>20, target.Path, target.Size>>20)
	}
	fmt.Fprintf(os.Stderr, "write-image: %s (%d MiB) -> %s\n", *image, fi.Size()>>20, target)
	fmt.Fprintln(os.Stderr, "write-image: EVERYTHING on this disk will be lost.")
	if !*yes {
		fmt.Fprintf(os.Stderr, "Type the device name (%s) to continue: ", target.Name)
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return errors.New("no confirmation read; nothing written")
		}
		if got := strings.TrimSpace(line); got != target.Name && got != target.Path {
			return fmt.Errorf("typed %q, not %q; nothing written", got, target.Name)
		}
	}
	if err := initramfs.WriteImage(*image, target, os.Stderr); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "write-image: done; %s can be removed\n", target.Path)
	return nil
}
