// Package snp owns inert's AMD SEV-SNP evidence: detecting an SNP guest
// (configfs-tsm or /dev/sev-guest), requesting one basic attestation report
// at VMPL 0 (never the extended-report ioctl, which wedged guests in
// practice) whose REPORT_DATA binds the boot's event log and operator config,
// storing it in the run directory, and verifying a stored report offline.
// It is separate from package measure because go-sev-guest's client adds
// about 3 MB and global flags; only binaries that need SNP link it.
package snp
