// Package kmod loads kernel modules at boot without modprobe. It owns reading
// a module tree's index (modules.dep, modules.alias, modules.builtin), resolving
// names and aliases to modules, ordering a dependency closure, and coldplug:
// matching the modalias of every device already in sysfs against the alias
// patterns and loading what matches.
//
// It runs inside the image as PID 1's worker (CGO_ENABLED=0). Every file is read
// under an injectable root and modules are inserted through the Loader
// interface, so tests run on fake trees with a recording loader. The host-side
// initramfs builder uses the same Index to pick the closure it ships, so the
// build and the boot agree on what a name means.
package kmod
