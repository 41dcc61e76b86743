package storage

import (
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"inert/boot/measure/swtpmtest"
)

// testTPM is a real swtpm for one test, stopped by pid at cleanup.
type testTPM struct{ *swtpmtest.TPM }

// startSwtpm runs a freshly manufactured swtpm (sha256 and sha384 banks,
// like the e2e harness).
func startSwtpm(t testing.TB) *testTPM {
	t.Helper()
	return &testTPM{swtpmtest.Start(t, "sha256", "sha384")}
}

// opener connects go-tpm's TCP transport (never PowerOn: swtpm is started).
func (s *testTPM) opener() TPMOpener {
	return func() (transport.TPMCloser, error) { return s.Open() }
}

// extend extends a sha256 PCR with the hash of word, as a boot phase would.
func (s *testTPM) extend(t testing.TB, pcr int, word string) {
	t.Helper()
	tp, err := s.opener()()
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	sum := sha256Sum([]byte(word))
	_, err = tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests:   tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: tpm2.TPMAlgSHA256, Digest: sum}}},
	}.Execute(tp)
	if err != nil {
		t.Fatal(err)
	}
}
