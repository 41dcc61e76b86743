package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"

	"inert/boot"
)

func init() {
	register("wifi-creds", "write a wifi.conf (SSID and passphrase) for the boot stick", runWifiCreds)
}

func runWifiCreds(args []string) error {
	fs := flag.NewFlagSet("wifi-creds", flag.ContinueOnError)
	out := fs.String("out", "wifi.conf", "file to write (mode 0600)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: inert wifi-creds [--out wifi.conf]")
		fmt.Fprintln(fs.Output(), "Asks for the network name (shown) and passphrase (not shown) on the terminal,")
		fmt.Fprintln(fs.Output(), "or reads them as two lines from standard input.")
		fs.PrintDefaults()
	}
	if done, err := parseNoArgs(fs, args); done || err != nil {
		return err
	}
	in := bufio.NewReader(os.Stdin)
	tty := term.IsTerminal(int(os.Stdin.Fd()))

	if tty {
		fmt.Fprint(os.Stderr, "Wi-Fi network name (SSID): ")
	}
	ssid, err := in.ReadString('\n')
	if err != nil && ssid == "" {
		return errors.New("no SSID read")
	}
	ssid = strings.TrimRight(ssid, "\r\n")

	var psk []byte
	if tty {
		fmt.Fprint(os.Stderr, "Passphrase (not shown): ")
		psk, err = term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return errors.New("no passphrase read")
		}
	} else {
		line, err := in.ReadString('\n')
		if err != nil && line == "" {
			return errors.New("no passphrase read")
		}
		psk = []byte(strings.TrimRight(line, "\r\n"))
	}
	content := make([]byte, 0, len(ssid)+len(psk)+2)
	content = append(append(append(append(content, ssid...), '\n'), psk...), '\n')
	clear(psk)
	defer clear(content)

	creds, err := boot.ParseWifi(content)
	if err != nil {
		return err // boot's errors never carry the passphrase
	}
	creds.Wipe()
	if err := boot.WriteFileAtomic(*out, content, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wifi-creds: wrote %s for network %q (mode 0600)\n", *out, ssid)
	return nil
}
