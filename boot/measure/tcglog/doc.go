// Package tcglog reads the firmware's TCG event log (the binary
// "crypto agile" log of the TCG PC Client Platform Firmware Profile that
// Linux exposes at /sys/kernel/security/tpm0/binary_bios_measurements): the
// events OVMF, systemd-stub and Linux's EFI stub measured into PCRs 0-9
// before inert ran. Verifiers replay PCRs they cannot predict (PCR 4) from
// it, and the end-to-end suite uses it to explain a PCR 7 or 9 mismatch.
// The log is outside input: every length is checked and a bad log is
// ErrFormat, never a panic.
package tcglog
