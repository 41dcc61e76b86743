package appliance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/go-sev-guest/client"

	"inert/boot/measure"
	"inert/boot/measure/snp"
)

// The measurement steps. With a TPM, every phase and the operator config go
// into PCR 11 and 12 of every active bank and into the event log; a TPM that
// fails once the boot has started measuring halts the boot (a gap in the
// log would make every later value meaningless). Without a TPM nothing is
// measured and the events say so; the manifest's tee.require decides
// whether that is acceptable.

// startMeasuring opens the TPM and the event log and measures enter-initrd,
// before any operator input is read.
func (w *Worker) startMeasuring(ctx context.Context) error {
	if !w.tee.TPM {
		return Skip("no TPM 2.0: nothing is measured")
	}
	log, err := measure.CreateLog(w.path(measure.LogPath))
	if err != nil {
		return Internal("Boot stopped: the measurement log could not be created.", err)
	}
	// systemd's record fields: which boot, and when (CLOCK_BOOTTIME).
	log.BootID = measure.ReadBootID(w.Root)
	log.Now = measure.BootTimeMicros
	m, err := measure.Open(w.path(measure.DevicePath), log)
	if err != nil {
		// A TPM that errors counts as absent, loudly; require=tpm then halts.
		w.tee.TPM = false
		w.writeTEE()
		if missing := requirementMissing(w.M.TEE.Require, w.tee); missing != "" {
			return Security("Boot stopped: this appliance requires "+missing+"; none was found.", err)
		}
		_ = log.Close()
		_ = os.Remove(w.path(measure.LogPath))
		return Skip("the TPM does not answer; treated as absent: " + err.Error())
	}
	w.measurer = m
	return w.phase("enter-initrd")
}

// phase extends PCR 11 with a boot phase word.
func (w *Worker) phase(word string) error {
	if w.measurer == nil {
		return nil
	}
	if err := measure.MeasurePhase(w.measurer, word); err != nil {
		return tpmFailed(err)
	}
	w.info("measure", "phase "+word)
	return nil
}

// measureInput records the operator config bytes exactly as read (or their
// absence) in PCR 12, and whether WiFi credentials were present (never the
// credentials themselves).
func (w *Worker) measureInput() error {
	if w.measurer == nil {
		return nil
	}
	found := w.files.ConfigPath != ""
	if err := measure.MeasureConfig(w.measurer, w.files.ConfigRaw, found); err != nil {
		return tpmFailed(err)
	}
	if err := measure.MeasureWifi(w.measurer, w.files.WifiPath != ""); err != nil {
		return tpmFailed(err)
	}
	return nil
}

func tpmFailed(err error) error {
	if errors.Is(err, measure.ErrTPM) {
		return Security("Boot stopped: the TPM failed during the boot.", err)
	}
	return Internal("Boot stopped: a measurement could not be recorded.", err)
}

// lockInput measures that the operator input is read, the boot medium gone
// and USB locked down.
func (w *Worker) lockInput(ctx context.Context) error {
	if w.measurer == nil {
		return Skip("no TPM")
	}
	if !w.inputMeasured {
		if err := w.measureInput(); err != nil {
			return err
		}
		w.inputMeasured = true
	}
	return w.phase("inert-input-locked")
}

// lockPhase is the last measurement before the service runs: from here on
// nothing sealed to an earlier PCR 11 value unseals. The inert-storage phase
// before it is extended by the storage step itself, first thing, so that
// zone keys seal and unseal against exactly that PCR 11 value.
//
// On an SEV-SNP guest the boot's attestation report is requested last, so
// that it binds the complete event log.
func (w *Worker) lockPhase(ctx context.Context) error {
	if w.measurer != nil {
		if err := w.phase("ready"); err != nil {
			return err
		}
		w.reportMeasuring()
		_ = w.measurer.Close()
	}
	if err := w.attestSNP(snp.OpenDevice); err != nil {
		return err
	}
	if w.measurer == nil && !w.tee.SNP {
		return Skip("no TPM")
	}
	return nil
}

// reportMeasuring says how many extends this boot made and what they cost
// (TPM commands and log writes): the measurement benchmark.
func (w *Worker) reportMeasuring() {
	n, spent := w.measurer.Spent()
	w.Emit(Event{Step: "lock", State: StateInfo, Message: fmt.Sprintf("%d measurements in %s", n, spent.Round(time.Microsecond)),
		Data: map[string]string{"measure_extends": strconv.Itoa(n), "measure_us": strconv.FormatInt(spent.Microseconds(), 10)}})
}

// attestSNP requests the boot's SEV-SNP report (basic report, VMPL 0) when
// the machine is an SNP guest, with REPORT_DATA binding the event log as it
// stands after "ready" and the operator config bytes as read (snp.Binding),
// and stores it in the run directory. A refusal halts the boot when the
// manifest requires SNP; otherwise the boot goes on and
// <run>/snp-report.error says why there is no report.
func (w *Worker) attestSNP(open func() (client.Device, error)) error {
	if !w.tee.SNP {
		return nil
	}
	runDir := w.path(w.M.RunDir)
	err := w.requestSNPReport(open, runDir)
	if err == nil {
		_ = os.Remove(filepath.Join(runDir, snpErrorFile))
		w.info("lock", "SEV-SNP attestation report stored")
		return nil
	}
	if w.M.TEE.Require == "snp" {
		return Security("Boot stopped: the SEV-SNP attestation report could not be obtained.", err)
	}
	_ = writePublic(filepath.Join(runDir, snpErrorFile), []byte(sanitize(err.Error())+"\n"))
	w.info("lock", "no SEV-SNP attestation report: "+sanitize(err.Error()))
	return nil
}

// snpErrorFile records why an SNP guest has no report.
const snpErrorFile = "snp-report.error"

func (w *Worker) requestSNPReport(open func() (client.Device, error), runDir string) error {
	var logBytes, config []byte
	if w.measurer != nil {
		b, err := os.ReadFile(w.path(measure.LogPath))
		if err != nil {
			return fmt.Errorf("%w: read the event log: %v", snp.ErrReport, err)
		}
		logBytes = b
	}
	if w.files.ConfigPath != "" {
		config = w.files.ConfigRaw
	}
	dev, err := open()
	if err != nil {
		return err
	}
	defer dev.Close()
	rep, err := snp.Request(dev, snp.NewBinding(logBytes, config))
	if err != nil {
		return err
	}
	return snp.Store(runDir, rep, nil)
}
