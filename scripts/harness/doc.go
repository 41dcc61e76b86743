// Package harness boots inert's artefacts (and tiny test guests) in QEMU the
// way a laptop would: OVMF (optionally with our Secure Boot keys enrolled) or
// SeaBIOS, a swtpm TPM, the image as USB storage on xHCI, extra virtio disks,
// user networking with a host port forward, the org.inert.events
// virtio-serial port, a QMP socket and a serial log.
//
// Every process it starts (swtpm, QEMU) is tracked by pid, bounded by
// timeouts and stopped by Stop, which tests register with t.Cleanup. QEMU
// always uses TCG: nested KVM does not work on the machines this runs on.
//
// It also builds the small initramfs archives its guests boot from
// (Initramfs, with the Debian kernel's module closure) and static guest
// programs (BuildStatic).
package harness
