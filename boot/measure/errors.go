package measure

import "errors"

var (
	// ErrForbiddenPCR refuses an extend of a PCR outside AllowedPCRs (PCR 15
	// above all).
	ErrForbiddenPCR = errors.New("PCR not allowed for inert measurements")
	// ErrTPM marks every failure of the TPM or its transport. The plan halts
	// on it; a TPM that errors counts as absent, never as skipped.
	ErrTPM = errors.New("TPM failure")
	// ErrUnsupportedBank is an active PCR bank whose hash inert cannot
	// compute; extending only the others would leave a bank forgeable, so it
	// is fatal.
	ErrUnsupportedBank = errors.New("unsupported active PCR bank")
	// ErrLogFormat marks an event log record that does not parse.
	ErrLogFormat = errors.New("malformed event log record")
	// ErrLog marks a failure to write or lock the event log.
	ErrLog = errors.New("event log failure")
)
