package e2e

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"inert/appliance"
	"inert/boot/measure"
	"inert/boot/measure/tcglog"
	"inert/scripts/harness"
)

// expectation is the part of `inert expect`'s JSON the measured-boot
// scenarios compare with.
type expectation struct {
	PCRs        map[string]map[string]string `json:"pcrs"`
	PCR12Events []string                     `json:"pcr12_events"`
	PCR7Events  []string                     `json:"pcr7_events"`
}

// inertExpect runs `inert expect` on an image as an operator would, for the
// banks the harness's swtpm activates.
func inertExpect(t *testing.T, img, config string, secureBoot bool) expectation {
	t.Helper()
	args := []string{"expect", "--banks", strings.Join(harness.DefaultPCRBanks, ",")}
	if config != "" {
		cfg := filepath.Join(t.TempDir(), "config.json")
		writeFile(t, cfg, config)
		args = append(args, "--config", cfg)
	}
	if secureBoot {
		args = append(args, "--secure-boot", keysDir)
	}
	cmd := exec.Command(inertCLI, append(args, img)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("inert %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var e expectation
	if err := json.Unmarshal(out, &e); err != nil {
		t.Fatalf("inert expect output: %v\n%s", err, out)
	}
	return e
}

// measuredBoot is what one boot's evidence says about measurement.
type measuredBoot struct {
	img      string
	pcrs     map[string]map[string]string
	records  []measure.Record
	firmware []tcglog.Event
}

// bootMeasured boots a stick with a TPM and collects its measurement
// evidence once the service answers.
func bootMeasured(t *testing.T, s stick, secureBoot bool) (measuredBoot, expectation, *harness.VM) {
	t.Helper()
	img, _ := s.image(t)
	want := inertExpect(t, img, s.Config, secureBoot)
	vm := boot(t, harness.Config{Image: img, TPM: true, SecureBoot: secureBoot})
	awaitHealthy(t, vm, bootLimit)
	ev := evidence(t, vm)
	// The operator's check: `inert verify evidence` on the same image.
	evPath := filepath.Join(t.TempDir(), "evidence.json")
	evJSON, _ := json.Marshal(ev)
	writeFile(t, evPath, string(evJSON))
	verifyArgs := []string{"verify", "evidence", "--image", img}
	if s.Config != "" {
		cfg := filepath.Join(t.TempDir(), "config.json")
		writeFile(t, cfg, s.Config)
		verifyArgs = append(verifyArgs, "--config", cfg)
	}
	if secureBoot {
		verifyArgs = append(verifyArgs, "--secure-boot", keysDir)
	}
	if err := run(repoRoot, inertCLI, append(verifyArgs, evPath)...); err != nil {
		t.Errorf("inert verify evidence: %v", err)
	}
	got := measuredBoot{img: img}
	got.pcrs = field[map[string]map[string]string](t, ev, "pcrs")
	for i, raw := range field[[]json.RawMessage](t, ev, "event_log") {
		var r measure.Record
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("event log record %d: %v: %s", i, err, raw)
		}
		got.records = append(got.records, r)
	}
	fwHex := field[string](t, ev, "firmware_log")
	fw, err := hex.DecodeString(fwHex)
	if err != nil || len(fw) == 0 {
		t.Fatalf("evidence carries no firmware log (%d hex chars, %v)", len(fwHex), err)
	}
	if got.firmware, err = tcglog.Parse(fw); err != nil {
		t.Fatalf("firmware log: %v", err)
	}
	return got, want, vm
}

// checkPredicted compares the live PCRs inert expect predicts, bank by bank,
// and shows the firmware's events for a PCR that differs.
func checkPredicted(t *testing.T, got measuredBoot, want expectation, pcrs ...string) {
	t.Helper()
	for _, bank := range harness.DefaultPCRBanks {
		if got.pcrs[bank] == nil {
			t.Errorf("evidence has no %s bank; the TPM has %v", bank, keys(got.pcrs))
			continue
		}
		for _, pcr := range pcrs {
			live, predicted := got.pcrs[bank][pcr], want.PCRs[bank][pcr]
			if predicted == "" || live != predicted {
				t.Errorf("%s PCR %s: live %s, inert expect %q", bank, pcr, live, predicted)
				for _, e := range got.firmware {
					if fmt.Sprint(e.PCR) == pcr {
						t.Logf("  firmware: %s", e.Describe())
					}
				}
			}
		}
	}
}

// checkReplay proves the logs explain the live values: the firmware log
// replays to PCRs 0-9, and inert's log, replayed on top of the firmware's
// PCR 11 (the stub's section events), gives PCR 11 and 12.
func checkReplay(t *testing.T, got measuredBoot) {
	t.Helper()
	fw := tcglog.Replay(got.firmware)
	for _, r := range got.records {
		if !measure.PCRAllowed(r.PCR) {
			t.Errorf("inert's log extends PCR %d", r.PCR)
		}
		if !r.SelfDescribing() {
			t.Errorf("record %q: digests are not the bank hashes of its string", r.Content.String)
		}
	}
	start := measure.Values{}
	for _, bank := range harness.DefaultPCRBanks {
		if v := fw.Get(bank, measure.PCRPhases); v != nil {
			start.Set(bank, measure.PCRPhases, v)
		}
	}
	replayed, err := measure.Replay(got.records, start)
	if err != nil {
		t.Fatalf("replay inert's log: %v", err)
	}
	for _, bank := range harness.DefaultPCRBanks {
		b, _ := measure.BankByName(bank)
		for pcr := 0; pcr <= 9; pcr++ {
			want := fw.Get(bank, pcr)
			if want == nil {
				want = b.Zero()
			}
			if live := got.pcrs[bank][fmt.Sprint(pcr)]; live != hex.EncodeToString(want) {
				t.Errorf("%s PCR %d: live %s, firmware log replays to %x", bank, pcr, live, want)
			}
		}
		for _, pcr := range []int{measure.PCRPhases, measure.PCRConfig} {
			if live, r := got.pcrs[bank][fmt.Sprint(pcr)], hex.EncodeToString(replayed.Get(bank, pcr)); live != r {
				t.Errorf("%s PCR %d: live %s, logs replay to %s", bank, pcr, live, r)
			}
		}
		if z := got.pcrs[bank][fmt.Sprint(measure.PCRService)]; z != hex.EncodeToString(b.Zero()) {
			t.Errorf("%s PCR 15 = %s: inert must never extend it", bank, z)
		}
	}
}

// recordStrings lists the log's content strings for one PCR.
func recordStrings(records []measure.Record, pcr int) []string {
	var out []string
	for _, r := range records {
		if r.PCR == pcr {
			out = append(out, r.Content.String)
		}
	}
	return out
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestMeasuredBoot boots the demo stick twice under OVMF with swtpm and
// Secure Boot off, without and with an operator config, and proves that
// `inert expect` predicted PCR 7, 9, 11 and 12 of each, that the logs replay
// to the live values, that PCR 15 stays zero, and that the config changed
// PCR 12 and nothing else inert controls.
func TestMeasuredBoot(t *testing.T) {
	t.Parallel()
	const config = `{"port": 8734, "note": "measured"}`
	var bootsMu sync.Mutex
	boots := map[string]measuredBoot{}
	t.Run("group", func(t *testing.T) {
		for name, s := range map[string]stick{"no config": {}, "config": {Config: config}} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				got, want, vm := bootMeasured(t, s, false)
				checkPredicted(t, got, want, "7", "9", "11", "12")
				checkReplay(t, got)
				phases := []string{}
				for _, p := range measure.Phases {
					phases = append(phases, p.Word)
				}
				if g := recordStrings(got.records, measure.PCRPhases); strings.Join(g, " ") != strings.Join(phases, " ") {
					t.Errorf("PCR 11 events %q, want the phases %q", g, phases)
				}
				if g := recordStrings(got.records, measure.PCRConfig); strings.Join(g, "\n") != strings.Join(want.PCR12Events, "\n") {
					t.Errorf("PCR 12 events %q, inert expect %q", g, want.PCR12Events)
				}
				reportMeasureTiming(t, vm)
				bootsMu.Lock()
				boots[name] = got
				bootsMu.Unlock()
			})
		}
	})
	without, with := boots["no config"], boots["config"]
	if without.pcrs == nil || with.pcrs == nil {
		t.Fatal("a boot failed; nothing to compare")
	}
	for _, bank := range harness.DefaultPCRBanks {
		for _, pcr := range []string{"7", "9", "11"} {
			if without.pcrs[bank][pcr] != with.pcrs[bank][pcr] {
				t.Errorf("%s PCR %s changed with the operator config", bank, pcr)
			}
		}
		if without.pcrs[bank]["12"] == with.pcrs[bank]["12"] {
			t.Errorf("%s PCR 12 did not change with the operator config", bank)
		}
	}
}

// TestMeasuredBootSecureBoot: with our keys enrolled, PCR 7 carries the
// enrolled variables and the db certificate that verified the UKI, and
// `inert expect --secure-boot` predicts it; the other PCRs are as without.
func TestMeasuredBootSecureBoot(t *testing.T) {
	t.Parallel()
	got, want, _ := bootMeasured(t, stick{}, true)
	checkPredicted(t, got, want, "7", "9", "11", "12")
	checkReplay(t, got)
	if n := len(want.PCR7Events); n == 0 || !strings.HasPrefix(want.PCR7Events[n-1], "EV_EFI_VARIABLE_AUTHORITY db") {
		t.Errorf("inert expect's PCR 7 events %q do not end with the db authority", want.PCR7Events)
	}
	off := inertExpect(t, got.img, "", false)
	for _, bank := range harness.DefaultPCRBanks {
		if off.PCRs[bank]["7"] == got.pcrs[bank]["7"] {
			t.Errorf("%s PCR 7 is the same with Secure Boot on and off", bank)
		}
	}
}

// TestRequireTPMWithoutTPM: a profile that requires a TPM, booted on a
// machine without one, halts with the reason and never starts the service.
func TestRequireTPMWithoutTPM(t *testing.T) {
	t.Parallel()
	img, _ := stick{Manifest: requireManifest(t, "tpm")}.image(t)
	vm := boot(t, harness.Config{Image: img, TPM: false})
	status := awaitHalt(t, vm, bootLimit)
	if want := "Boot stopped: this appliance requires a TPM 2.0; none was found."; status != want {
		t.Errorf("halt status %q, want %q", status, want)
	}
	for _, e := range events(vm) {
		if e.Service != nil {
			t.Errorf("the service was handed to PID 1 without the required TPM")
		}
		if e.Step == "measure" && e.State == appliance.StateOK {
			t.Errorf("the measure step ran without a TPM")
		}
	}
	assertParked(t, vm)
}

// requireManifest is the demo profile with tee.require set.
func requireManifest(t *testing.T, require string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "appliance", "profiles", "demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["tee"] = map[string]any{"require": require}
	out, _ := json.MarshalIndent(m, "", "  ")
	path := filepath.Join(work, "require-"+require+".json")
	mu.Lock()
	defer mu.Unlock()
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// reportMeasureTiming prints the time this boot spent measuring (TPM
// extends and event log writes, from the worker's own clock) and how long
// the measuring steps took.
func reportMeasureTiming(t *testing.T, vm *harness.VM) {
	var steps []string
	for _, e := range events(vm) {
		if d := e.Data["measure_us"]; d != "" {
			fmt.Printf("BENCH measure %s: %s extends took %s us in total (TCG, swtpm)\n", t.Name(), e.Data["measure_extends"], d)
		}
		if e.State == appliance.StateOK && (e.Step == "measure" || e.Step == "input-locked" || e.Step == "lock") {
			steps = append(steps, fmt.Sprintf("%s %d ms", e.Step, time.Duration(e.Duration).Milliseconds()))
		}
	}
	fmt.Printf("BENCH measure %s: steps %s\n", t.Name(), strings.Join(steps, ", "))
}
