package measure

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
)

// The PCRs inert uses, after the systemd PCR registry.
const (
	// PCRPhases (kernel-boot) gets the stub's UKI sections, then inert's boot
	// phases.
	PCRPhases = 11
	// PCRConfig (kernel-config) gets the operator configuration.
	PCRConfig = 12
	// PCRService (system-identity) belongs to the service: HyperBEAM extends
	// it and its verifier replays it from zero. inert never touches it.
	PCRService = 15
)

// AllowedPCRs are the only PCRs Extend accepts.
var AllowedPCRs = []int{PCRPhases, PCRConfig}

// PCRAllowed says whether inert may extend pcr.
func PCRAllowed(pcr int) bool { return slices.Contains(AllowedPCRs, pcr) }

// Phase is one boot phase word extended into PCR 11. As with
// systemd-pcrphase, the measured bytes are the bare UTF-8 word, no NUL, hashed
// with each bank's algorithm.
type Phase struct {
	Word string `json:"word"`
	// When says where in the plan the worker extends it.
	When string `json:"when"`
}

// Phases is inert's PCR 11 sequence, in order. `inert expect` and the README
// print this same list. A secret sealed to PCR 11 "after inert-storage" can be
// unsealed only between that extend and the next one ("ready"), i.e. while
// the zone storage step runs and never once the service runs.
var Phases = []Phase{
	{"enter-initrd", "PID 1 setup done: before modules load and before any operator input is read (systemd's word)"},
	{"inert-input-locked", "operator files on the ESP read and measured (PCR 12 final), boot medium detached, USB locked down"},
	{"inert-storage", "network up; immediately before zone keys unseal: the only phase zone keys are sealed to"},
	{"ready", "lock phase: zone storage mounted, just before PID 1 starts the service (systemd's word)"},
}

// PhaseByWord finds a phase of Phases.
func PhaseByWord(word string) (Phase, bool) {
	for _, p := range Phases {
		if p.Word == word {
			return p, true
		}
	}
	return Phase{}, false
}

// Event types in the log's content.eventType. "phase" is systemd's; the
// others are inert's own.
const (
	EventTypePhase  = "phase"
	EventTypeConfig = "inert-config"
	EventTypeWifi   = "inert-wifi"
)

// NoConfigEvent is measured into PCR 12 when no operator config.json was
// found, so "no config" and "some config" never give the same PCR 12.
const NoConfigEvent = "inert-config:none"

// ConfigEvent is the string measured into PCR 12 for the exact config.json
// bytes read from the ESP: "inert-config:sha256:" + lower-case hex of
// sha256(config). Each bank measures its own hash of this string, so a
// verifier needs only sha256(config) to recompute every bank.
func ConfigEvent(config []byte) string {
	sum := sha256.Sum256(config)
	return "inert-config:sha256:" + hex.EncodeToString(sum[:])
}

// WifiEvent is the string measured into PCR 12 after the config event: only
// whether WiFi credentials are used, never anything about them.
func WifiEvent(present bool) string {
	if present {
		return "inert-wifi-credentials:present"
	}
	return "inert-wifi-credentials:absent"
}

// Extender is what a plan step needs to measure: one extend of every active
// bank plus one log record. *Measurer implements it.
type Extender interface {
	Extend(pcr int, eventType, description string, data []byte) error
}

// MeasurePhase extends PCR 11 with a phase word from Phases.
func MeasurePhase(e Extender, word string) error {
	if _, ok := PhaseByWord(word); !ok {
		return fmt.Errorf("measure phase: %q is not one of inert's phases", word)
	}
	return e.Extend(PCRPhases, EventTypePhase, word, []byte(word))
}

// MeasureConfig extends PCR 12 with the config event: ConfigEvent(config)
// when found, NoConfigEvent otherwise. Pass the bytes exactly as read, before
// validation: what is measured is what was presented.
func MeasureConfig(e Extender, config []byte, found bool) error {
	s := NoConfigEvent
	if found {
		s = ConfigEvent(config)
	}
	return e.Extend(PCRConfig, EventTypeConfig, s, []byte(s))
}

// MeasureWifi extends PCR 12 with WifiEvent(present).
func MeasureWifi(e Extender, present bool) error {
	s := WifiEvent(present)
	return e.Extend(PCRConfig, EventTypeWifi, s, []byte(s))
}

// ConfigEvents is PCR 12's event strings in the order the worker measures
// them; expect and evidence checks use it.
func ConfigEvents(config []byte, found, wifi bool) []string {
	s := NoConfigEvent
	if found {
		s = ConfigEvent(config)
	}
	return []string{s, WifiEvent(wifi)}
}
