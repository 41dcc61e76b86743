package harness

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Firmware selects what QEMU boots with.
type Firmware string

const (
	// FirmwareOVMF is UEFI (Debian's 4M OVMF build), the default.
	FirmwareOVMF Firmware = "ovmf"
	// FirmwareSeaBIOS is QEMU's legacy BIOS: fastest for direct kernel boot.
	FirmwareSeaBIOS Firmware = "seabios"
)

// ErrFirmware means an OVMF file is missing or the firmware name is unknown.
var ErrFirmware = errors.New("harness: firmware")

// OVMF paths from Debian's ovmf package. The Secure Boot build needs q35 with
// SMM and a secure pflash: only it protects the authenticated variables
// (and so keeps Secure Boot enforced once PK is enrolled).
var (
	OVMFCode           = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	OVMFSecureBootCode = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
	OVMFVars           = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// copyFile copies src to dst (mode 0600), replacing dst.
func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// firmwareArgs returns the QEMU arguments for the firmware, copying the vars
// template to varsCopy for OVMF.
func firmwareArgs(fw Firmware, secure bool, varsTemplate, varsCopy string) (machine string, args []string, err error) {
	switch fw {
	case FirmwareSeaBIOS:
		return "q35", nil, nil
	case FirmwareOVMF, "":
	default:
		return "", nil, fmt.Errorf("%w: unknown firmware %q", ErrFirmware, fw)
	}
	code := OVMFCode
	machine = "q35"
	if secure {
		code = OVMFSecureBootCode
		machine = "q35,smm=on"
		args = append(args, "-global", "driver=cfi.pflash01,property=secure,value=on")
	}
	if varsTemplate == "" {
		varsTemplate = OVMFVars
	}
	if _, err := os.Stat(code); err != nil {
		return "", nil, fmt.Errorf("%w: OVMF code: %v", ErrFirmware, err)
	}
	if err := copyFile(varsCopy, varsTemplate); err != nil {
		return "", nil, fmt.Errorf("%w: OVMF vars: %v", ErrFirmware, err)
	}
	args = append(args,
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+code,
		"-drive", "if=pflash,format=raw,unit=1,file="+varsCopy)
	return machine, args, nil
}

// FirmwareRefusal is what OVMF prints on the serial console when Secure Boot
// refuses a boot option's image.
const FirmwareRefusal = "Access Denied"
