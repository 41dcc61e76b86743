// Package boot owns what inert learns from, and does to, the machine it boots on
// before any service runs: the kernel command line, the boot ESP and the operator
// files on it, the UKI record, detaching the boot medium and locking USB down, TEE
// and memory-encryption detection, and measurement (subpackage measure).
//
// Everything here reads through an injectable root (sysfs, /dev, /proc) and small
// interfaces (Mounter), so it is tested on fake trees without root. It imports no
// other inert room.
package boot
