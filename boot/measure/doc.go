// Package measure owns what inert puts into the TPM and how it is written
// down: the PCR layout (boot phases in PCR 11, operator configuration in PCR
// 12, never PCR 15), the TPM measurer that extends every active PCR bank, and
// the userspace event log at /run/log/systemd/tpm2-measure.log in systemd's
// JSON-SEQ format, which replays to the live PCR values.
//
// Contract (CONTRACTS §2):
//   - Only PCRs in AllowedPCRs are ever extended; PCR 15 belongs to the service
//     (HyperBEAM replays it from zero) and is refused with ErrForbiddenPCR.
//   - Every active bank is extended with that bank's hash of the same bytes.
//   - For every record inert writes, the measured bytes are exactly the UTF-8
//     of content.string (no NUL), so the log is self-describing: a verifier
//     recomputes each digest from the string alone (Record.SelfDescribing).
//   - A TPM that fails is ErrTPM; callers halt, nothing is skipped silently.
//
// The package links only go-tpm's tpm2 direct API; SNP lives in subpackage
// snp and host-side prediction in subpackage expect, so the init binary only
// carries what it uses.
package measure
