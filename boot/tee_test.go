package boot

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestDetectTEE(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, m *fakeMachine)
		kmsg  string
		check func(TEEInfo) bool
	}{
		{name: "bare nothing", check: func(i TEEInfo) bool {
			return !i.SNP && !i.TDX && !i.TPM && !i.SME && i.TME == TMEUnknown && i.VMVendor == ""
		}},
		{name: "sev-guest node", setup: func(t *testing.T, m *fakeMachine) { mustWrite(t, m.node("sev-guest"), "") },
			check: func(i TEEInfo) bool { return i.SNP && i.SNPSource == "/dev/sev-guest" && !i.TDX }},
		{name: "configfs-tsm", setup: func(t *testing.T, m *fakeMachine) {
			mustMkdir(t, filepath.Join(m.sys, "kernel", "config", "tsm", "report"))
		}, check: func(i TEEInfo) bool { return i.SNP && i.SNPSource == "configfs-tsm" }},
		{name: "tdx", setup: func(t *testing.T, m *fakeMachine) {
			mustWrite(t, m.node("tdx_guest"), "")
			mustMkdir(t, filepath.Join(m.sys, "kernel", "config", "tsm", "report"))
		}, check: func(i TEEInfo) bool { return i.TDX && !i.SNP }},
		{name: "tpm2", setup: func(t *testing.T, m *fakeMachine) {
			mustWrite(t, filepath.Join(m.sys, "class", "tpm", "tpm0", "tpm_version_major"), "2\n")
		}, check: func(i TEEInfo) bool { return i.TPM && i.TPMVersion == 2 }},
		{name: "tpm1.2", setup: func(t *testing.T, m *fakeMachine) {
			mustWrite(t, filepath.Join(m.sys, "class", "tpm", "tpm0", "tpm_version_major"), "1\n")
		}, check: func(i TEEInfo) bool { return !i.TPM && i.TPMVersion == 1 }},
		{name: "sme flag", setup: func(t *testing.T, m *fakeMachine) {
			mustWrite(t, filepath.Join(m.proc, "cpuinfo"), "processor\t: 0\nflags\t\t: fpu sme hypervisor\n\nprocessor\t: 1\nflags\t\t: fpu\n")
		}, check: func(i TEEInfo) bool { return i.SME && i.Hypervisor }},
		{name: "no sme flag (sme_enabled is not sme)", setup: func(t *testing.T, m *fakeMachine) {
			mustWrite(t, filepath.Join(m.proc, "cpuinfo"), "flags\t\t: fpu sev sme_enabled\n")
		}, check: func(i TEEInfo) bool { return !i.SME }},
		{name: "tme enabled kmsg", kmsg: "6,330,105000,-;x86/tme: enabled by BIOS\n",
			check: func(i TEEInfo) bool { return i.TME == TMEEnabled }},
		{name: "tme enabled dmesg", kmsg: "[    0.105000] x86/tme: enabled by BIOS\n",
			check: func(i TEEInfo) bool { return i.TME == TMEEnabled }},
		{name: "tme not enabled wins", kmsg: "6,1,1,-;x86/tme: enabled by BIOS\n6,2,2,-;x86/tme: not enabled by BIOS\n",
			check: func(i TEEInfo) bool { return i.TME == TMENotEnabled }},
		{name: "usb product string cannot fake tme", kmsg: "6,900,9000,-;usb 1-1: Product: x86/tme: enabled by BIOS\n",
			check: func(i TEEInfo) bool { return i.TME == TMEUnknown }},
		{name: "qemu", setup: func(t *testing.T, m *fakeMachine) {
			mustWrite(t, filepath.Join(m.sys, "class", "dmi", "id", "sys_vendor"), "QEMU\n")
		}, check: func(i TEEInfo) bool { return i.VMVendor == "qemu" && i.SysVendor == "QEMU" }},
		{name: "surface laptop is not a VM", setup: func(t *testing.T, m *fakeMachine) {
			mustWrite(t, filepath.Join(m.sys, "class", "dmi", "id", "sys_vendor"), "Microsoft Corporation\n")
			mustWrite(t, filepath.Join(m.sys, "class", "dmi", "id", "product_name"), "Surface Laptop 5\n")
		}, check: func(i TEEInfo) bool { return i.VMVendor == "" }},
		{name: "hyper-v", setup: func(t *testing.T, m *fakeMachine) {
			mustWrite(t, filepath.Join(m.sys, "class", "dmi", "id", "sys_vendor"), "Microsoft Corporation\n")
			mustWrite(t, filepath.Join(m.sys, "class", "dmi", "id", "product_name"), "Virtual Machine\n")
		}, check: func(i TEEInfo) bool { return i.VMVendor == "hyperv" }},
		{name: "hostile vendor string", setup: func(t *testing.T, m *fakeMachine) {
			mustWrite(t, filepath.Join(m.sys, "class", "dmi", "id", "sys_vendor"), "Evil\x1b[2J\n")
		}, check: func(i TEEInfo) bool { return i.SysVendor == "Evil?[2J" && i.VMVendor == "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newFakeMachine(t)
			if tc.setup != nil {
				tc.setup(t, m)
			}
			info := DetectTEE(m.env(nil, nil), ParseCmdline("mem_encrypt=on"), tc.kmsg)
			if !tc.check(info) {
				t.Fatalf("info %+v", info)
			}
			if info.MemEncrypt != "on" {
				t.Errorf("mem_encrypt not recorded: %+v", info)
			}
			b, err := json.Marshal(info)
			var back TEEInfo
			if err != nil || json.Unmarshal(b, &back) != nil || back != info {
				t.Errorf("tee.json round trip: %s, %v", b, err)
			}
		})
	}
}

func TestTMEGate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		info    TEEInfo
		noTME   bool
		outcome string
		reason  string
		wantErr error
	}{
		{name: "tme enabled", info: TEEInfo{TME: TMEEnabled}, outcome: "pass"},
		{name: "sme active", info: TEEInfo{SME: true}, outcome: "pass"},
		{name: "snp guest", info: TEEInfo{SNP: true, VMVendor: "qemu"}, outcome: "pass"},
		{name: "tdx guest", info: TEEInfo{TDX: true, TME: TMENotEnabled}, outcome: "pass"},
		{name: "not enabled halts", info: TEEInfo{TME: TMENotEnabled}, outcome: "halt", wantErr: ErrTMEDisabled},
		{name: "cmdline opt-out", info: TEEInfo{TME: TMENotEnabled}, noTME: true, outcome: "skip", reason: "cmdline"},
		{name: "vm", info: TEEInfo{TME: TMENotEnabled, VMVendor: "qemu"}, outcome: "skip", reason: "vm"},
		{name: "no evidence", info: TEEInfo{TME: TMEUnknown}, outcome: "pass", reason: "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := TMEGate(tc.info, tc.noTME)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if v.Outcome != tc.outcome || (tc.reason != "" && v.Reason != tc.reason) {
				t.Fatalf("verdict %+v, want %s %s", v, tc.outcome, tc.reason)
			}
		})
	}
}

func TestDetectTEEEmptyRoots(t *testing.T) {
	root := t.TempDir()
	env := Env{SysRoot: filepath.Join(root, "nosys"), DevRoot: filepath.Join(root, "nodev"), ProcRoot: filepath.Join(root, "noproc")}
	info := DetectTEE(env, ParseCmdline(""), "")
	if info.SNP || info.TDX || info.TPM || info.SME || info.TME != TMEUnknown {
		t.Fatalf("absent trees gave %+v", info)
	}
	if _, err := os.Stat(env.SysRoot); err == nil {
		t.Fatal("DetectTEE created files")
	}
}
