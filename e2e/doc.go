// Package e2e boots the real artefacts an operator writes to a stick (a
// signed UKI on a GPT/FAT32 image, attached as USB storage on qemu-xhci) in
// QEMU with OVMF and swtpm, and asserts on what the appliance reports: the
// org.inert.events port, HTTP answers through the forwarded port, QMP
// screendumps and disk bytes. Run with `make e2e` (part of `make test`).
package e2e
