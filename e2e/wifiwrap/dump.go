package main

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"inert/boot"
	"inert/e2e/wifiwrap/apconf"
)

const (
	virtioPorts = "/sys/class/virtio-ports"
	// maxDumpFile caps one file in the dump; the run dir holds small files.
	maxDumpFile = 8 << 20
)

// supplicantConfig is the name of netup's wpa_supplicant config file. The
// dump lists it but never opens it: netup removes the file as soon as a
// reader closes it, and that reader must be the supplicant.
const supplicantConfig = "wpa.conf"

// dumpRoots are what the dump covers: inert's run directory and every
// other tmpfs file, resolv.conf, and each process's command line and
// environment (a PSK passed on a command line would show there).
var dumpRoots = []string{"/run", "/tmp", "/etc/resolv.conf", "/var"}

// runDump waits for the dump port (inert loads virtio_console and mounts
// sysfs and devtmpfs; this process shares its mount namespace), says hello,
// and answers every request with a tar of the dump roots.
func runDump() error {
	src, err := boot.OpenNetlinkUevents()
	if err != nil {
		return err
	}
	ctx := context.Background()
	failures := 0
	var dev string
	for dev = findPort(); dev == ""; dev = findPort() {
		err := src.WaitFor(ctx, "virtio port "+apconf.DumpPort, func(u boot.Uevent) bool {
			return u.Vars["SUBSYSTEM"] == "virtio-ports" && findPort() != ""
		})
		if err != nil {
			// A full socket buffer during the boot's uevent storm: look again.
			if failures++; failures > 100 {
				return fmt.Errorf("waiting for the dump port: %w", err)
			}
		}
	}
	src.Close()
	port, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer port.Close()
	if _, err := fmt.Fprintln(port, apconf.DumpHello); err != nil {
		return err
	}
	r := bufio.NewReader(port)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("dump port: %w", err)
		}
		if strings.TrimSpace(line) != apconf.DumpRequest {
			continue
		}
		if err := writeDump(port, dumpRoots, "/proc"); err != nil {
			return err
		}
	}
}

// findPort returns the /dev node of the dump port, or "".
func findPort() string {
	ents, err := os.ReadDir(virtioPorts)
	if err != nil {
		return ""
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(virtioPorts, e.Name(), "name"))
		if err == nil && strings.TrimSpace(string(b)) == apconf.DumpPort {
			if _, err := os.Stat("/dev/" + e.Name()); err == nil {
				return "/dev/" + e.Name()
			}
		}
	}
	return ""
}

// writeDump writes one tar of roots and of <proc>/*/{cmdline,environ}.
func writeDump(w io.Writer, roots []string, proc string) error {
	tw := tar.NewWriter(w)
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // vanished or unreadable: skip, keep going
			}
			return addEntry(tw, p, false)
		})
	}
	procs, _ := os.ReadDir(proc)
	for _, e := range procs {
		if strings.Trim(e.Name(), "0123456789") != "" {
			continue
		}
		for _, f := range []string{"cmdline", "environ"} {
			_ = addEntry(tw, filepath.Join(proc, e.Name(), f), true)
		}
	}
	return tw.Close()
}

// addEntry adds p; procFile says p is a /proc file, whose size reads 0.
func addEntry(tw *tar.Writer, p string, procFile bool) error {
	st, err := os.Lstat(p)
	if err != nil {
		return nil
	}
	hdr := &tar.Header{Name: strings.TrimPrefix(p, "/"), Mode: int64(st.Mode().Perm()), ModTime: st.ModTime()}
	var data []byte
	switch {
	case st.IsDir():
		hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
	case st.Mode()&fs.ModeSymlink != 0:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname, _ = os.Readlink(p)
	case filepath.Base(p) == supplicantConfig:
		hdr.Typeflag = tar.TypeFifo // listed, never read
	case st.Mode().IsRegular() || procFile:
		f, err := os.Open(p)
		if err != nil {
			return nil
		}
		data, _ = io.ReadAll(io.LimitReader(f, maxDumpFile))
		f.Close()
		hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(data))
	default:
		hdr.Typeflag = tar.TypeChar // sockets, fifos, nodes: the name only
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = tw.Write(data)
	return err
}
