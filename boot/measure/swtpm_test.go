package measure

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-tpm/tpm2/transport/tcp"

	"inert/boot/measure/swtpmtest"
)

// swtpmInstance is one real software TPM started for a test.
type swtpmInstance struct{ *swtpmtest.TPM }

// startSwtpm runs a freshly manufactured swtpm with the given banks.
func startSwtpm(t testing.TB, banks ...string) *swtpmInstance {
	t.Helper()
	return &swtpmInstance{swtpmtest.Start(t, banks...)}
}

// open connects go-tpm's TCP transport (never PowerOn: swtpm is started).
func (s *swtpmInstance) open(t testing.TB) *tcp.TPM {
	t.Helper()
	tpm, err := s.Open()
	if err != nil {
		t.Fatalf("open swtpm: %v", err)
	}
	return tpm
}

// tempLog creates a fresh log in a temp dir.
func tempLog(t testing.TB) *Log {
	t.Helper()
	l, err := CreateLog(filepath.Join(t.TempDir(), "run/log/systemd/tpm2-measure.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func mustNotExist(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		t.Fatalf("%s exists", path)
	}
}
