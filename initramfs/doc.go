// Package initramfs is host-side tooling: it turns a profile into the bytes an
// operator writes to a stick. It owns the reproducible cpio, the kernel module
// and firmware closure, the ELF shared-library closure, UKI assembly and
// signing, the disk image and the expected measurements.
package initramfs
