// Command inert is the host-side CLI: it builds initramfs images, UKIs and disk
// images, manages Secure Boot keys, puts operator files on an image, predicts
// measurements and verifies evidence. Each subcommand lives in its own file and
// registers itself in commands.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

// command is one subcommand. Run gets the arguments after the subcommand name
// and returns an error whose text is shown to the user as is.
type command struct {
	Summary string
	Run     func(args []string) error
}

var commands = map[string]command{}

func register(name, summary string, run func(args []string) error) {
	if _, dup := commands[name]; dup {
		panic("duplicate subcommand " + name)
	}
	commands[name] = command{Summary: summary, Run: run}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: inert <command> [flags] [args]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-14s %s\n", n, commands[n].Summary)
	}
	fmt.Fprintln(os.Stderr, "\nRun 'inert <command> --help' for a command's flags.")
}

func main() {
	if len(os.Args) < 2 || strings.HasPrefix(os.Args[1], "-") {
		usage()
		if len(os.Args) >= 2 && (os.Args[1] == "-h" || os.Args[1] == "--help") {
			os.Exit(0)
		}
		os.Exit(2)
	}
	name := os.Args[1]
	cmd, ok := commands[name]
	if !ok && len(os.Args) > 2 {
		// two-word commands: "esp set", "verify snp"
		name = os.Args[1] + " " + os.Args[2]
		if cmd, ok = commands[name]; ok {
			os.Args = append(os.Args[:2:2], os.Args[3:]...)
		}
	}
	if !ok {
		fmt.Fprintf(os.Stderr, "inert: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err := cmd.Run(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "inert %s: %v\n", name, err)
		os.Exit(1)
	}
}

// parseFlags parses a subcommand's flags. done is true when --help was
// asked for (the usage is already printed and the command should succeed).
func parseFlags(fs *flag.FlagSet, args []string) (done bool, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return true, err
	}
	return false, nil
}

// parseNoArgs is parseFlags for commands that take no positional arguments.
func parseNoArgs(fs *flag.FlagSet, args []string) (done bool, err error) {
	if done, err := parseFlags(fs, args); done || err != nil {
		return done, err
	}
	if fs.NArg() > 0 {
		return true, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return false, nil
}
