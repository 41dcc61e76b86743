package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"inert/appliance"
)

// mountEarly makes the early rows of the mount table. A required mount that
// fails stops the boot: without /proc, /sys, /dev and /run nothing after it
// can be trusted to report correctly.
func mountEarly() error {
	for _, m := range appliance.MountsAt("early") {
		if err := os.MkdirAll(m.Target, 0o755); err != nil && !m.Optional {
			return fmt.Errorf("mkdir %s: %w", m.Target, err)
		}
		err := unix.Mount(m.Source, m.Target, m.FSType, m.Flags, m.Data)
		if errors.Is(err, unix.EBUSY) {
			continue // already mounted (by the kernel or a wrapper init)
		}
		if err != nil && !m.Optional {
			return fmt.Errorf("mount %s on %s: %w", m.FSType, m.Target, err)
		}
	}
	return nil
}

// mountTargets lists the current mount points from /proc/self/mountinfo in
// the order they were mounted.
func mountTargets() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var targets []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			targets = append(targets, unescapeMountinfo(fields[4]))
		}
	}
	return targets
}

// unescapeMountinfo undoes the octal escapes (\040 for space) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountAll unmounts everything but / in reverse mount order; what stays
// busy is detached lazily so the final sync and reboot are not blocked.
func unmountAll() {
	targets := mountTargets()
	for i := len(targets) - 1; i >= 0; i-- {
		t := targets[i]
		if t == "/" {
			continue
		}
		if err := unix.Unmount(t, 0); err != nil {
			_ = unix.Unmount(t, unix.MNT_DETACH)
		}
	}
}
