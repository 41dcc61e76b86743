package measure

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"golang.org/x/sys/unix"
)

// RetryPolicy bounds how long inert waits for a busy TPM. AMD fTPMs in
// particular answer TPM_RC_RETRY/YIELDED/TESTING or time out in the kernel
// driver for a while after boot; a few short, growing waits ride that out,
// and anything longer is a failed TPM.
type RetryPolicy struct {
	// Attempts is the total number of tries per command (at least 1).
	Attempts int
	// Backoff is the first wait, doubled after every try up to MaxBackoff.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Sleep waits; nil means time.Sleep. Tests inject a recorder.
	Sleep func(time.Duration)
}

// DefaultRetry waits at most about 1.5 s in total per command.
var DefaultRetry = RetryPolicy{Attempts: 6, Backoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond}

func (p RetryPolicy) attempts() int { return max(p.Attempts, 1) }

func (p RetryPolicy) wait(try int) {
	d := p.Backoff
	for i := 1; i < try && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	if d <= 0 {
		return
	}
	if p.Sleep != nil {
		p.Sleep(d)
		return
	}
	time.Sleep(d)
}

// retryingTPM resends a command the TPM answered with a "not now" warning
// (the command was not executed, so resending is always safe) and, for
// read-only commands only, one that timed out in transport.
type retryingTPM struct {
	inner  transport.TPM
	policy RetryPolicy
}

// busyCodes are the warnings after which the TPM did not execute the command.
var busyCodes = []tpm2.TPMRC{tpm2.TPMRCRetry, tpm2.TPMRCYielded, tpm2.TPMRCTesting}

func (r retryingTPM) Send(cmd []byte) ([]byte, error) {
	for try := 1; ; try++ {
		rsp, err := r.inner.Send(cmd)
		again := false
		switch {
		case err != nil:
			again = isTimeout(err) && readOnlyCommand(cmd)
		default:
			again = isBusy(rsp)
		}
		if !again || try >= r.policy.attempts() {
			return rsp, err
		}
		r.policy.wait(try)
	}
}

func responseCode(rsp []byte) (tpm2.TPMRC, bool) {
	if len(rsp) < 10 {
		return 0, false
	}
	return tpm2.TPMRC(binary.BigEndian.Uint32(rsp[6:10])), true
}

func isBusy(rsp []byte) bool {
	rc, ok := responseCode(rsp)
	if !ok {
		return false
	}
	for _, c := range busyCodes {
		if rc == c {
			return true
		}
	}
	return false
}

func readOnlyCommand(cmd []byte) bool {
	if len(cmd) < 10 {
		return false
	}
	switch tpm2.TPMCC(binary.BigEndian.Uint32(cmd[6:10])) {
	case tpm2.TPMCCPCRRead, tpm2.TPMCCGetCapability:
		return true
	}
	return false
}

// isTimeout recognises the kernel TPM driver's timeout (ETIME), socket
// timeouts and deadlines.
func isTimeout(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, unix.ETIME) || errors.Is(err, unix.ETIMEDOUT) || errors.Is(err, os.ErrDeadlineExceeded)
}
