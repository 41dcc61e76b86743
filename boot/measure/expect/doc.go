// Package expect predicts, on the build host, the PCR values a boot of an
// inert image produces under OVMF with swtpm, from the artefacts alone: PCR
// 7 from the Secure Boot variables OVMF measures and the db certificate that
// verifies the UKI, PCR 9 from the UKI's command line and initrd as Linux's
// EFI stub measures them, PCR 11 from the UKI's sections (as systemd-stub 252
// measures them) followed by inert's phases, PCR 12 from the operator config
// (or its absence) and WiFi presence, and the UKI's Authenticode digest per
// bank for replaying PCR 4 from the firmware log. Check compares a booted
// appliance's evidence with a prediction and replays its logs. It reads PE
// files, disk images and evidence documents; it never runs on the appliance.
package expect
