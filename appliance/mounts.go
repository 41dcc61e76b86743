package appliance

import "golang.org/x/sys/unix"

// Mount is one row of the mount table.
type Mount struct {
	Source, Target, FSType string
	Flags                  uintptr
	Data                   string
	// Stage: "early" mounts are made by PID 1 before any child starts;
	// "modules" mounts need a filesystem module and are made by the worker
	// right after the module step.
	Stage string
	// Optional mounts may fail (the filesystem or the firmware interface is
	// absent) without stopping the boot; the step says so in an event.
	Optional bool
	// Needs is a path that must exist for the mount to be attempted
	// (efivarfs only exists on UEFI machines).
	Needs string
}

const (
	nosuidNodevNoexec = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
)

// Mounts is the mount table of CONTRACTS §1.1, in order. efivarfs is
// read-only: only the provisioner writes EFI variables.
var Mounts = []Mount{
	{"proc", "/proc", "proc", nosuidNodevNoexec, "", "early", false, ""},
	{"sysfs", "/sys", "sysfs", nosuidNodevNoexec, "", "early", false, ""},
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID | unix.MS_NOEXEC, "mode=0755", "early", false, ""},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0000", "early", false, ""},
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777", "early", false, ""},
	{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755", "early", false, ""},
	{"securityfs", "/sys/kernel/security", "securityfs", nosuidNodevNoexec, "", "early", true, ""},
	{"configfs", "/sys/kernel/config", "configfs", nosuidNodevNoexec, "", "modules", true, ""},
	{"efivarfs", "/sys/firmware/efi/efivars", "efivarfs", nosuidNodevNoexec | unix.MS_RDONLY, "", "modules", true, "/sys/firmware/efi"},
}

// MountsAt returns the rows of one stage.
func MountsAt(stage string) []Mount {
	var out []Mount
	for _, m := range Mounts {
		if m.Stage == stage {
			out = append(out, m)
		}
	}
	return out
}
