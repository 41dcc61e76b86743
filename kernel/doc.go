// Package kernel is host-side tooling for the kernel inert boots: locating the
// installed Debian kernel and its modules, the config fragments inert relies on,
// and a checker that tells which of them a given kernel config satisfies.
package kernel
