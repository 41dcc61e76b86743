package measure

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"golang.org/x/sys/unix"
)

// independentHash is a second, table-free mapping from bank name to hash
// used to compute expectations without the package's Bank type.
func independentHash(bank string) func() hash.Hash {
	return map[string]func() hash.Hash{
		"sha1": sha1.New, "sha256": sha256.New, "sha384": sha512.New384, "sha512": sha512.New,
	}[bank]
}

// chain computes a PCR value from zero over the given measured strings.
func chain(bank string, measured ...string) []byte {
	newH := independentHash(bank)
	pcr := make([]byte, newH().Size())
	for _, m := range measured {
		d := newH()
		d.Write([]byte(m))
		e := newH()
		e.Write(pcr)
		e.Write(d.Sum(nil))
		pcr = e.Sum(nil)
	}
	return pcr
}

// bootSequence measures what a boot with a config and no WiFi measures.
func bootSequence(t *testing.T, m Extender, config []byte) (pcr11, pcr12 []string) {
	t.Helper()
	for _, p := range Phases {
		if p.Word == "inert-input-locked" {
			if err := MeasureConfig(m, config, true); err != nil {
				t.Fatal(err)
			}
			if err := MeasureWifi(m, false); err != nil {
				t.Fatal(err)
			}
		}
		if err := MeasurePhase(m, p.Word); err != nil {
			t.Fatal(err)
		}
		pcr11 = append(pcr11, p.Word)
	}
	sum := sha256.Sum256(config)
	pcr12 = []string{"inert-config:sha256:" + hex.EncodeToString(sum[:]), "inert-wifi-credentials:absent"}
	return pcr11, pcr12
}

func TestMeasurerEveryBank(t *testing.T) {
	for _, banks := range [][]string{
		{"sha256"},
		{"sha1", "sha256", "sha384"},
		{"sha384", "sha512"}, // no sha256 at all
	} {
		t.Run(strings.Join(banks, "+"), func(t *testing.T) {
			sw := startSwtpm(t, banks...)
			tpm := sw.open(t)
			defer tpm.Close()
			log := tempLog(t)
			m, err := New(tpm, log, DefaultRetry)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range m.Banks() {
				got = append(got, b.Name)
			}
			if !slices.Equal(got, banks) {
				t.Fatalf("active banks %v, swtpm_setup activated %v", got, banks)
			}
			pcr11, pcr12 := bootSequence(t, m, []byte(`{"port": 8734}`))
			if n, spent := m.Spent(); n != len(pcr11)+len(pcr12) || spent <= 0 {
				t.Errorf("Spent() = %d extends in %s, made %d", n, spent, len(pcr11)+len(pcr12))
			}

			live, err := m.ReadPCRs(PCRPhases, PCRConfig, PCRService, 0)
			if err != nil {
				t.Fatal(err)
			}
			records, err := ReadLog(log.Path())
			if err != nil {
				t.Fatal(err)
			}
			if len(records) != len(pcr11)+len(pcr12) {
				t.Fatalf("log has %d records, want %d", len(records), len(pcr11)+len(pcr12))
			}
			replayed, err := Replay(records, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, bank := range banks {
				for pcr, want := range map[int][]byte{
					PCRPhases: chain(bank, pcr11...), PCRConfig: chain(bank, pcr12...),
					PCRService: chain(bank), 0: chain(bank),
				} {
					if !bytes.Equal(live.Get(bank, pcr), want) {
						t.Errorf("%s PCR %d = %x, independent computation %x", bank, pcr, live.Get(bank, pcr), want)
					}
					if pcr == PCRPhases || pcr == PCRConfig {
						if !bytes.Equal(replayed.Get(bank, pcr), live.Get(bank, pcr)) {
							t.Errorf("%s PCR %d: log replays to %x, TPM has %x", bank, pcr, replayed.Get(bank, pcr), live.Get(bank, pcr))
						}
					}
				}
			}
			for i, r := range records {
				if !r.SelfDescribing() || len(r.Digests) != len(banks) {
					t.Errorf("record %d not self-describing over all banks: %+v", i, r)
				}
			}
			// tpm2-tools, an independent reader, agrees (sha256 bank when present).
			tpm.Close()
			if slices.Contains(banks, "sha256") {
				out, err := exec.Command("tpm2_pcrread", "-T", "swtpm:host=127.0.0.1,port="+sw.CommandAddr[strings.LastIndexByte(sw.CommandAddr, ':')+1:], "sha256:11,12,15").CombinedOutput()
				if err != nil {
					t.Fatalf("tpm2_pcrread: %v\n%s", err, out)
				}
				for _, want := range [][]byte{live.Get("sha256", 11), live.Get("sha256", 12), live.Get("sha256", 15)} {
					if !strings.Contains(strings.ToUpper(string(out)), strings.ToUpper(hex.EncodeToString(want))) {
						t.Errorf("tpm2_pcrread output lacks %x:\n%s", want, out)
					}
				}
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestForbiddenPCRsUntouched(t *testing.T) {
	sw := startSwtpm(t, "sha256", "sha384")
	tpm := sw.open(t)
	defer tpm.Close()
	log := tempLog(t)
	m, err := New(tpm, log, DefaultRetry)
	if err != nil {
		t.Fatal(err)
	}
	for _, pcr := range []int{PCRService, 0, 7, 9, 13, 16, 23, -1, 24} {
		err := m.Extend(pcr, "phase", "x", []byte("x"))
		if !errors.Is(err, ErrForbiddenPCR) {
			t.Errorf("extend PCR %d: %v, want ErrForbiddenPCR", pcr, err)
		}
	}
	v, err := m.ReadPCRs(PCRService, 0, 7, 9)
	if err != nil {
		t.Fatal(err)
	}
	for _, bank := range []string{"sha256", "sha384"} {
		for _, pcr := range []int{PCRService, 0, 7, 9} {
			if !bytes.Equal(v.Get(bank, pcr), chain(bank)) {
				t.Errorf("%s PCR %d = %x, want zeros", bank, pcr, v.Get(bank, pcr))
			}
		}
	}
	if recs, err := ReadLog(log.Path()); err != nil || len(recs) != 0 {
		t.Errorf("refused extends left %d records (%v)", len(recs), err)
	}
}

// faultyTPM wraps a real transport and injects one kind of fault.
type faultyTPM struct {
	inner transport.TPM
	// busyFirst answers this many commands with busyRC without sending them.
	busyFirst atomic.Int32
	busyRC    tpm2.TPMRC
	// dead: every send fails, as when the TPM goes away after Open.
	dead bool
	sent atomic.Int32
	// timeoutExtend: the next N PCR_Extends time out, after (executed=true)
	// or before reaching the TPM.
	timeoutExtend atomic.Int32
	executed      bool
}

func (f *faultyTPM) Send(cmd []byte) ([]byte, error) {
	f.sent.Add(1)
	if f.dead {
		return nil, errors.New("injected: connection reset")
	}
	if f.busyFirst.Add(-1) >= 0 {
		rsp := make([]byte, 10)
		binary.BigEndian.PutUint16(rsp, uint16(tpm2.TPMSTNoSessions))
		binary.BigEndian.PutUint32(rsp[2:], 10)
		binary.BigEndian.PutUint32(rsp[6:], uint32(f.busyRC))
		return rsp, nil
	}
	if tpm2.TPMCC(binary.BigEndian.Uint32(cmd[6:10])) == tpm2.TPMCCPCRExtend && f.timeoutExtend.Add(-1) >= 0 {
		if f.executed {
			if _, err := f.inner.Send(cmd); err != nil {
				return nil, err
			}
		}
		return nil, &os.PathError{Op: "write", Path: "/dev/tpmrm0", Err: unix.ETIME}
	}
	return f.inner.Send(cmd)
}

func TestMeasurerFaults(t *testing.T) {
	var slept []time.Duration
	policy := RetryPolicy{Attempts: 4, Backoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond,
		Sleep: func(d time.Duration) { slept = append(slept, d) }}
	cases := []struct {
		name   string
		fault  func(f *faultyTPM)
		wantOK bool
		is     []error
		sleeps int
	}{
		{"retry twice then ok", func(f *faultyTPM) { f.busyFirst.Store(2); f.busyRC = tpm2.TPMRCRetry }, true, nil, 2},
		{"yielded then ok", func(f *faultyTPM) { f.busyFirst.Store(1); f.busyRC = tpm2.TPMRCYielded }, true, nil, 1},
		{"testing then ok", func(f *faultyTPM) { f.busyFirst.Store(3); f.busyRC = tpm2.TPMRCTesting }, true, nil, 3},
		{"busy forever", func(f *faultyTPM) { f.busyFirst.Store(1000); f.busyRC = tpm2.TPMRCRetry }, false, []error{ErrTPM, tpm2.TPMRCRetry}, 3},
		{"timeout after execute", func(f *faultyTPM) { f.timeoutExtend.Store(1); f.executed = true }, true, nil, 0},
		{"timeout before execute", func(f *faultyTPM) { f.timeoutExtend.Store(1) }, true, nil, 1},
		{"timeouts forever", func(f *faultyTPM) { f.timeoutExtend.Store(1000) }, false, []error{ErrTPM}, 3},
		{"dies after open", func(f *faultyTPM) { f.dead = true }, false, []error{ErrTPM}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sw := startSwtpm(t, "sha1", "sha256")
			tpm := sw.open(t)
			defer tpm.Close()
			log := tempLog(t)
			f := &faultyTPM{inner: tpm}
			m, err := New(f, log, policy)
			if err != nil {
				t.Fatal(err)
			}
			f.sent.Store(0)
			tc.fault(f)
			slept = nil
			err = MeasurePhase(m, "enter-initrd")
			if len(slept) != tc.sleeps {
				t.Errorf("slept %d times (%v), want %d", len(slept), slept, tc.sleeps)
			}
			for _, want := range tc.is {
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want errors.Is %v", err, want)
				}
			}
			// Read back through a fresh, fault-free connection.
			m2, err2 := New(tpm, tempLog(t), DefaultRetry)
			if err2 != nil {
				t.Fatal(err2)
			}
			live, err2 := m2.ReadPCRs(PCRPhases)
			if err2 != nil {
				t.Fatal(err2)
			}
			records, logErr := ReadLog(log.Path())
			if tc.wantOK {
				if err != nil {
					t.Fatalf("extend: %v", err)
				}
				if logErr != nil || len(records) != 1 {
					t.Fatalf("log: %d records, %v", len(records), logErr)
				}
				replayed, _ := Replay(records, nil)
				for _, bank := range []string{"sha1", "sha256"} {
					want := chain(bank, "enter-initrd") // exactly once, never twice
					if !bytes.Equal(live.Get(bank, 11), want) || !bytes.Equal(replayed.Get(bank, 11), want) {
						t.Errorf("%s PCR 11: TPM %x, replay %x, want %x", bank, live.Get(bank, 11), replayed.Get(bank, 11), want)
					}
				}
				return
			}
			if err == nil {
				t.Fatal("extend succeeded under a fatal fault")
			}
			// A failed extend leaves the log marked incomplete.
			if !errors.Is(logErr, ErrLogFormat) {
				t.Errorf("log after failed extend: %v, want ErrLogFormat (incomplete)", logErr)
			}
		})
	}
}

func TestGarbageLogReplaced(t *testing.T) {
	sw := startSwtpm(t, "sha256")
	tpm := sw.open(t)
	defer tpm.Close()
	path := t.TempDir() + "/tpm2-measure.log"
	if err := os.WriteFile(path, []byte("\x1e{\"pcr\":11,garbage\n\x00\xff"), 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := CreateLog(path)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	m, err := New(tpm, log, DefaultRetry)
	if err != nil {
		t.Fatal(err)
	}
	if err := MeasurePhase(m, "enter-initrd"); err != nil {
		t.Fatal(err)
	}
	recs, err := ReadLog(path)
	if err != nil || len(recs) != 1 || recs[0].Content.String != "enter-initrd" {
		t.Fatalf("log after restart: %+v, %v", recs, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("log mode %v, want 0600", fi.Mode())
	}
}

func TestOpenMissingDevice(t *testing.T) {
	_, err := Open(t.TempDir()+"/tpmrm0", tempLog(t))
	if !errors.Is(err, ErrTPM) {
		t.Fatalf("open missing device: %v, want ErrTPM", err)
	}
	// A regular file is not a TPM either.
	p := t.TempDir() + "/tpmrm0"
	os.WriteFile(p, nil, 0o600)
	if _, err := Open(p, tempLog(t)); !errors.Is(err, ErrTPM) {
		t.Fatalf("open regular file: %v, want ErrTPM", err)
	}
}

func BenchmarkExtendAndLog(b *testing.B) {
	sw := startSwtpm(b, "sha1", "sha256", "sha384")
	tpm := sw.open(b)
	defer tpm.Close()
	m, err := New(tpm, tempLog(b), DefaultRetry)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.Extend(PCRPhases, EventTypePhase, "bench", []byte("bench")); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(per.Microseconds()), "µs/extend")
	b.Logf("extend+log over 3 banks: %v per extend; a boot measures %d events: %v", per, len(Phases)+2, per*time.Duration(len(Phases)+2))
}
