package boot

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// TMEState is what the kernel log says about Intel TME.
type TMEState string

// TME states from the kernel log (arch/x86/kernel/cpu/intel.c).
const (
	TMEEnabled    TMEState = "enabled"
	TMENotEnabled TMEState = "not-enabled"
	TMEUnknown    TMEState = "unknown"
)

// The exact kernel messages; a record counts only when its whole text is
// one of these, so a USB product string that contains them cannot fake one.
const (
	kmsgTMEEnabled    = "x86/tme: enabled by BIOS"
	kmsgTMENotEnabled = "x86/tme: not enabled by BIOS"
)

// TEEInfo is what the machine offers for confidentiality and attestation.
// It is written as tee.json.
type TEEInfo struct {
	SNP       bool   `json:"snp"`
	SNPSource string `json:"snp_source,omitempty"` // "/dev/sev-guest" or "configfs-tsm"
	TDX       bool   `json:"tdx"`
	TPM       bool   `json:"tpm"` // a TPM 2.0 at tpm0
	// TPMVersion is tpm0's tpm_version_major; 0 when absent or unreadable.
	TPMVersion int `json:"tpm_version"`
	// SME is the cpu flag "sme": the kernel keeps it only while SME is active.
	SME bool     `json:"sme"`
	TME TMEState `json:"tme"`
	// Hypervisor is the cpu flag "hypervisor" (recorded, not decisive).
	Hypervisor bool `json:"hypervisor"`
	// SysVendor is the DMI system vendor (printable, trimmed); VMVendor
	// names the hypervisor it identifies, or is empty.
	SysVendor   string `json:"sys_vendor"`
	ProductName string `json:"product_name,omitempty"`
	VMVendor    string `json:"vm_vendor,omitempty"`
	// MemEncrypt is the kernel's mem_encrypt= parameter, if given.
	MemEncrypt string `json:"mem_encrypt,omitempty"`
}

// vmVendors maps DMI sys_vendor prefixes to a hypervisor name. Microsoft
// is special: Surface laptops share its vendor string, so Hyper-V counts
// only with product "Virtual Machine".
var vmVendors = []struct{ prefix, name string }{
	{"QEMU", "qemu"},
	{"Bochs", "bochs"},
	{"Xen", "xen"},
	{"KVM", "kvm"},
	{"VMware", "vmware"},
	{"innotek", "virtualbox"},
	{"Parallels", "parallels"},
	{"Red Hat", "kvm"},
	{"Google", "gce"},
	{"Amazon EC2", "ec2"},
	{"OpenStack", "openstack"},
}

// DetectTEE gathers TEE facts from env's sysfs, /dev and /proc, the command
// line, and kmsg (the kernel log text, read by the caller). Missing files
// mean "absent", never an error.
func DetectTEE(env Env, cmdline Cmdline, kmsg string) TEEInfo {
	var t TEEInfo
	switch {
	case exists(filepath.Join(env.DevRoot, "sev-guest")):
		t.SNP, t.SNPSource = true, "/dev/sev-guest"
	case !exists(filepath.Join(env.DevRoot, "tdx_guest")) &&
		isDir(filepath.Join(env.SysRoot, "kernel", "config", "tsm", "report")):
		// configfs-tsm also serves TDX; without a TDX node it is SNP.
		t.SNP, t.SNPSource = true, "configfs-tsm"
	}
	t.TDX = exists(filepath.Join(env.DevRoot, "tdx_guest"))

	tpm := filepath.Join(env.SysRoot, "class", "tpm", "tpm0")
	if exists(tpm) {
		if b, err := readSmallFile(filepath.Join(tpm, "tpm_version_major")); err == nil {
			t.TPMVersion, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		t.TPM = t.TPMVersion == 2
	}

	flags := cpuFlags(filepath.Join(env.ProcRoot, "cpuinfo"))
	t.SME, t.Hypervisor = flags["sme"], flags["hypervisor"]
	t.TME = tmeFromKmsg(kmsg)

	dmi := filepath.Join(env.SysRoot, "class", "dmi", "id")
	t.SysVendor = dmiString(filepath.Join(dmi, "sys_vendor"))
	t.ProductName = dmiString(filepath.Join(dmi, "product_name"))
	t.VMVendor = vmVendor(t.SysVendor, t.ProductName)
	t.MemEncrypt, _ = cmdline.Value("mem_encrypt")
	return t
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func dmiString(p string) string {
	b, err := readSmallFile(p)
	if err != nil {
		return ""
	}
	return recordValue(strings.TrimSpace(string(b)))
}

func vmVendor(sysVendor, product string) string {
	if strings.HasPrefix(sysVendor, "Microsoft") && product == "Virtual Machine" {
		return "hyperv"
	}
	for _, v := range vmVendors {
		if strings.HasPrefix(sysVendor, v.prefix) {
			return v.name
		}
	}
	return ""
}

// cpuFlags returns the first "flags" line of cpuinfo as a set.
func cpuFlags(path string) map[string]bool {
	set := map[string]bool{}
	f, err := os.Open(path)
	if err != nil {
		return set
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "flags" {
			for _, fl := range strings.Fields(v) {
				set[fl] = true
			}
			break
		}
	}
	return set
}

// tmeFromKmsg finds the TME line in kernel log text, either /dev/kmsg
// records ("6,123,456,-;text") or dmesg lines ("[  0.1] text"). "not
// enabled" wins over "enabled" if both appear.
func tmeFromKmsg(kmsg string) TMEState {
	state := TMEUnknown
	for _, line := range strings.Split(kmsg, "\n") {
		switch kmsgText(line) {
		case kmsgTMENotEnabled:
			return TMENotEnabled
		case kmsgTMEEnabled:
			state = TMEEnabled
		}
	}
	return state
}

// kmsgText strips a /dev/kmsg record header or a dmesg timestamp.
func kmsgText(line string) string {
	line = strings.TrimRight(line, "\r")
	if head, text, ok := strings.Cut(line, ";"); ok && isKmsgHeader(head) {
		return text
	}
	if strings.HasPrefix(line, "[") {
		if i := strings.Index(line, "] "); i > 0 {
			return line[i+2:]
		}
	}
	return line
}

// isKmsgHeader matches "prio,seq,usec,flags[,more]" with numeric fields.
func isKmsgHeader(h string) bool {
	f := strings.Split(h, ",")
	return len(f) >= 4 && isDigits(f[0]) && isDigits(f[1]) && isDigits(f[2])
}

// ErrTMEDisabled: the firmware left Intel TME off on bare metal; halt.
var ErrTMEDisabled = errors.New("memory encryption (TME) is not enabled by BIOS")

// TMEVerdict is the outcome of the memory-encryption gate.
type TMEVerdict struct {
	Outcome string `json:"outcome"` // "pass", "skip" or "halt"
	Reason  string `json:"reason"`
}

// TMEGate decides the memory-encryption gate (CONTRACTS §1.5), first rule
// that applies:
//
//	SNP or TDX guest            pass  (memory encrypted by the TEE)
//	TME enabled, or SME active  pass
//	noTME (LAPEE_NO_TME=1)      skip  (cmdline)
//	VM DMI vendor               skip  (vm)
//	"not enabled by BIOS"       halt  ErrTMEDisabled
//	otherwise                   pass  (unknown)
//
// The last rule is the contract's: it halts only on the explicit line.
// AMD machines without SME and Intel machines too old for TME print no
// line; halting them would refuse hardware the contract accepts.
func TMEGate(info TEEInfo, noTME bool) (TMEVerdict, error) {
	switch {
	case info.SNP:
		return TMEVerdict{"pass", "SEV-SNP guest"}, nil
	case info.TDX:
		return TMEVerdict{"pass", "TDX guest"}, nil
	case info.TME == TMEEnabled:
		return TMEVerdict{"pass", "TME enabled by BIOS"}, nil
	case info.SME:
		return TMEVerdict{"pass", "SME active"}, nil
	case noTME:
		return TMEVerdict{"skip", "cmdline"}, nil
	case info.VMVendor != "":
		return TMEVerdict{"skip", "vm"}, nil
	case info.TME == TMENotEnabled:
		return TMEVerdict{"halt", "TME not enabled by BIOS"}, ErrTMEDisabled
	}
	return TMEVerdict{"pass", "unknown"}, nil
}
