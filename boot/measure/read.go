package measure

import (
	"fmt"

	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

// ReadPCRs opens the TPM at path read-only in spirit (it only reads) and
// returns PCRs 0..23 of every active bank. The demo service uses it for
// evidence.json; it needs no event log.
func ReadPCRs(path string) (Values, error) {
	t, err := linuxtpm.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %v", ErrTPM, path, err)
	}
	defer t.Close()
	m := &Measurer{tpm: retryingTPM{inner: t, policy: DefaultRetry}, policy: DefaultRetry}
	if err := m.readBanks(); err != nil {
		return nil, err
	}
	all := make([]int, 24)
	for i := range all {
		all[i] = i
	}
	return m.ReadPCRs(all...)
}
