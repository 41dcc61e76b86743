package kernel

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// ErrConfig means a kernel config could not be read or parsed.
var ErrConfig = errors.New("bad kernel config")

// Requirement is one kernel option inert relies on and the values that
// satisfy it ("y" built in, "m" a module inert loads itself).
type Requirement struct {
	Option  string
	Allowed []string
	Why     string
}

// Problem is a requirement the config does not meet. Have is the option's
// value, "" when unset. Err is set instead when the config could not be read
// at all, which fails every requirement.
type Problem struct {
	Requirement Requirement
	Have        string
	Err         error
}

func (p Problem) String() string {
	if p.Err != nil {
		return p.Err.Error()
	}
	have := p.Have
	if have == "" {
		have = "not set"
	}
	return fmt.Sprintf("%s is %s, want %s (%s)", p.Requirement.Option, have,
		strings.Join(p.Requirement.Allowed, " or "), p.Requirement.Why)
}

var (
	builtIn  = []string{"y"}
	loadable = []string{"y", "m"}
)

// Requirements are the options inert's boot path relies on. Options that must
// be "y" are needed before /init can load a module, or have no module form.
var Requirements = []Requirement{
	{"CONFIG_BLK_DEV_INITRD", builtIn, "the initramfs is the root filesystem"},
	{"CONFIG_RD_ZSTD", builtIn, "the initramfs is zstd-compressed"},
	{"CONFIG_DEVTMPFS", builtIn, "/dev is devtmpfs"},
	{"CONFIG_TMPFS", builtIn, "/run and /tmp"},
	{"CONFIG_PROC_FS", builtIn, "/proc"},
	{"CONFIG_SYSFS", builtIn, "sysfs and coldplug"},
	{"CONFIG_MODULES", builtIn, "inert loads modules itself"},
	{"CONFIG_EFI_STUB", builtIn, "the UKI boots the kernel's EFI stub"},
	{"CONFIG_SECURITYFS", builtIn, "the TPM event log for the service"},
	{"CONFIG_TCG_TPM", loadable, "TPM measurement"},
	{"CONFIG_TCG_TIS", loadable, "/dev/tpm0 on TIS TPMs and swtpm"},
	{"CONFIG_FB_EFI", builtIn, "the splash on the firmware framebuffer"},
	{"CONFIG_EFIVAR_FS", loadable, "firmware boot partition and Secure Boot variables"},
	{"CONFIG_CONFIGFS_FS", loadable, "configfs-tsm SNP reports"},
	{"CONFIG_DM_CRYPT", loadable, "LUKS2 zone storage"},
	{"CONFIG_CRYPTO_XTS", loadable, "aes-xts-plain64 zone volumes"},
	{"CONFIG_EXT4_FS", loadable, "the zone filesystem"},
	{"CONFIG_VFAT_FS", loadable, "reading the boot ESP"},
	{"CONFIG_NLS_CODEPAGE_437", loadable, "vfat's default codepage"},
	{"CONFIG_NLS_ASCII", loadable, "vfat's default iocharset"},
	{"CONFIG_USB_XHCI_HCD", loadable, "the boot stick's controller"},
	{"CONFIG_USB_STORAGE", loadable, "the boot stick"},
	{"CONFIG_BLK_DEV_SD", loadable, "SCSI disks, including the boot stick"},
	{"CONFIG_VIRTIO_CONSOLE", loadable, "the org.inert.events port in tests"},
}

// Check reports the requirements configPath does not meet; none means the
// kernel is fit. An unreadable config is one Problem with Err set: a check
// that cannot run has failed.
func Check(configPath string, reqs []Requirement) []Problem {
	f, err := os.Open(configPath)
	if err != nil {
		return []Problem{{Err: fmt.Errorf("%w: %v", ErrConfig, err)}}
	}
	defer f.Close()
	cfg, err := ParseConfig(f)
	if err != nil {
		return []Problem{{Err: fmt.Errorf("%s: %w", configPath, err)}}
	}
	return CheckConfig(cfg, reqs)
}

// CheckConfig is Check on a parsed config.
func CheckConfig(cfg map[string]string, reqs []Requirement) []Problem {
	var problems []Problem
	for _, r := range reqs {
		if have := cfg[r.Option]; !slices.Contains(r.Allowed, have) {
			problems = append(problems, Problem{Requirement: r, Have: have})
		}
	}
	return problems
}

// maxConfigBytes caps a config; Debian's is about 260 KB.
const maxConfigBytes = 8 << 20

// ParseConfig reads a kernel .config: "CONFIG_X=value" lines give values,
// "# CONFIG_X is not set" and other comments are skipped. Quoted string values
// keep their quotes.
func ParseConfig(r io.Reader) (map[string]string, error) {
	cfg := map[string]string{}
	sc := bufio.NewScanner(io.LimitReader(r, maxConfigBytes+1))
	sc.Buffer(nil, 1<<20)
	read := 0
	for no := 1; sc.Scan(); no++ {
		read += len(sc.Bytes()) + 1
		if read > maxConfigBytes {
			return nil, fmt.Errorf("%w: larger than %d bytes", ErrConfig, maxConfigBytes)
		}
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(k, "CONFIG_") || len(k) == len("CONFIG_") {
			return nil, fmt.Errorf("%w: line %d is not CONFIG_X=value", ErrConfig, no)
		}
		cfg[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return cfg, nil
}
