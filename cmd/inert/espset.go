package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"inert/initramfs"
)

func init() {
	register("esp set", "put operator files (config.json, wifi.conf) on an image", runESPSet)
}

// espMaxFile bounds what is read from an operator file; the boot side
// rejects anything larger anyway.
const espMaxFile = 1 << 20

func runESPSet(args []string) error {
	fs := flag.NewFlagSet("esp set", flag.ContinueOnError)
	image := fs.String("image", "", "disk image built by inert image")
	config := fs.String("config", "", "config.json to put on the ESP")
	wifi := fs.String("wifi", "", "wifi.conf to put on the ESP (see inert wifi-creds)")
	rmConfig := fs.Bool("remove-config", false, "remove config.json from the ESP")
	rmWifi := fs.Bool("remove-wifi", false, "remove wifi.conf from the ESP")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: inert esp set --image IMG [--config F] [--wifi F] [--remove-config] [--remove-wifi]")
		fs.PrintDefaults()
	}
	if done, err := parseNoArgs(fs, args); done || err != nil {
		return err
	}
	if *image == "" {
		return errors.New("--image is required")
	}
	if *config == "" && *wifi == "" && !*rmConfig && !*rmWifi {
		return errors.New("nothing to do: give --config, --wifi, --remove-config or --remove-wifi")
	}
	var edit initramfs.OperatorEdit
	var err error
	edit.RemoveConfig, edit.RemoveWifi = *rmConfig, *rmWifi
	if *config != "" {
		if edit.Config, err = espReadFile(*config); err != nil {
			return err
		}
	}
	if *wifi != "" {
		if edit.Wifi, err = espReadFile(*wifi); err != nil {
			return err
		}
		defer clear(edit.Wifi)
	}
	if err := initramfs.SetOperatorFiles(*image, edit, os.Stderr); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "esp: %s updated (its hash changed; the signed UKI did not)\n", *image)
	return nil
}

func espReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, espMaxFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > espMaxFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, espMaxFile)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}
