// Package expect predicts, on the build host, the PCR values a boot of an
// inert image produces, from the artefacts alone: PCR 11 from the UKI's
// sections (as systemd-stub 252 measures them) followed by inert's phases,
// PCR 12 from the operator config (or its absence) and WiFi presence, PCR 9
// from the kernel command line and initrd as Linux's EFI stub measures them,
// and the UKI's Authenticode digest per bank for replaying PCR 4 from the
// firmware log. It reads PE files and disk images; it never runs on the
// appliance.
package expect
