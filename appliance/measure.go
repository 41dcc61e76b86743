package appliance

import (
	"context"
	"errors"
	"os"

	"inert/boot/measure"
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
// nothing sealed to an earlier PCR 11 value unseals.
func (w *Worker) lockPhase(ctx context.Context) error {
	if w.measurer == nil {
		return Skip("no TPM")
	}
	if err := w.phase("inert-storage"); err != nil {
		return err
	}
	if err := w.phase("ready"); err != nil {
		return err
	}
	_ = w.measurer.Close()
	return nil
}
