package expect

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"unicode/utf16"

	"github.com/foxboron/go-uefi/authenticode"

	"inert/boot/measure"
)

// Options are the inputs besides the UKI.
type Options struct {
	// Banks to predict; nil means every bank inert knows (swtpm may enable any
	// of them).
	Banks []measure.Bank
	// Config is the operator config.json bytes when HasConfig.
	Config    []byte
	HasConfig bool
	// Wifi says whether WiFi credentials will be used.
	Wifi bool
	// SecureBoot is the firmware's Secure Boot state for PCR 7; nil means
	// Off (OVMF with nothing enrolled).
	SecureBoot *SecureBoot
}

// Step is PCR 11 after one event group.
type Step struct {
	After string `json:"after"`
	Value string `json:"value"`
}

// SectionInfo describes one measured UKI section.
type SectionInfo struct {
	Name   string `json:"name"`
	Size   int    `json:"size"`
	SHA256 string `json:"sha256"`
}

// Result is what `inert expect` prints.
type Result struct {
	UKISHA256 string `json:"uki_sha256"`
	// Authenticode is the UKI's Authenticode digest per bank: the digest of
	// its EV_EFI_BOOT_SERVICES_APPLICATION event in PCR 4 of the firmware log.
	Authenticode map[string]string `json:"authenticode"`
	Sections     []SectionInfo     `json:"uki_sections"`
	// PCRs is bank -> PCR -> hex value at service start.
	PCRs map[string]map[string]string `json:"pcrs"`
	// PCR11Steps is bank -> PCR 11 after the stub, then after each phase.
	PCR11Steps  map[string][]Step `json:"pcr11_after_each"`
	PCR12Events []string          `json:"pcr12_events"`
	// PCR7Events are the firmware's PCR 7 events, in order.
	PCR7Events []string        `json:"pcr7_events"`
	SecureBoot bool            `json:"secure_boot"`
	Phases     []measure.Phase `json:"phases"`
	Notes      []string        `json:"notes"`
}

// Predict computes the expected values for a UKI.
func Predict(uki []byte, opts Options) (*Result, error) {
	secs, err := ParseUKI(uki)
	if err != nil {
		return nil, err
	}
	banks := opts.Banks
	if banks == nil {
		banks = measure.KnownBanks
	}
	bin, err := authenticode.Parse(bytes.NewReader(uki))
	if err != nil {
		return nil, fmt.Errorf("%w: authenticode: %v", ErrNotUKI, err)
	}
	sb := Off
	if opts.SecureBoot != nil {
		sb = *opts.SecureBoot
	}
	pcr7Events, err := PCR7Events(uki, sb)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(uki)
	res := &Result{
		UKISHA256:    hex.EncodeToString(sum[:]),
		Authenticode: map[string]string{},
		PCRs:         map[string]map[string]string{},
		PCR11Steps:   map[string][]Step{},
		PCR12Events:  measure.ConfigEvents(opts.Config, opts.HasConfig, opts.Wifi),
		PCR7Events:   hexEvents(pcr7Events),
		SecureBoot:   sb.Enabled,
		Phases:       measure.Phases,
		Notes: []string{
			"PCR 11: systemd-stub 252 section measurements (name+NUL, then contents to VirtualSize), then inert's phases",
			"PCR 12: inert's config and WiFi events only; the stub adds nothing when the UKI embeds .cmdline",
			"PCR 9: Linux's EFI stub (6.1): EV_EVENT_TAG LOADED_IMAGE::LoadOptions (the .cmdline the stub passes, UTF-16LE with NUL), then EV_EVENT_TAG Linux initrd (the .initrd section)",
			"PCR 7: OVMF's SecureBoot, PK, KEK, db, dbx (EV_EFI_VARIABLE_DRIVER_CONFIG), EV_SEPARATOR, and with Secure Boot on the db entry that verified the UKI (EV_EFI_VARIABLE_AUTHORITY)",
			"PCR 4: depends on the boot path; replay it from the firmware log (the UKI's event carries the authenticode digest below)",
		},
	}
	for _, s := range secs {
		h := sha256.Sum256(s.Data)
		res.Sections = append(res.Sections, SectionInfo{s.Name, len(s.Data), hex.EncodeToString(h[:])})
	}
	for _, b := range banks {
		res.Authenticode[b.Name] = hex.EncodeToString(bin.Hash(b.Hash))
		pcr11 := b.Zero()
		for _, s := range secs {
			pcr11 = b.ExtendValue(pcr11, b.Digest(append([]byte(s.Name), 0)))
			pcr11 = b.ExtendValue(pcr11, b.Digest(s.Data))
		}
		steps := []Step{{"systemd-stub", hex.EncodeToString(pcr11)}}
		for _, p := range measure.Phases {
			pcr11 = b.ExtendValue(pcr11, b.Digest([]byte(p.Word)))
			steps = append(steps, Step{p.Word, hex.EncodeToString(pcr11)})
		}
		pcr12 := b.Zero()
		for _, e := range res.PCR12Events {
			pcr12 = b.ExtendValue(pcr12, b.Digest([]byte(e)))
		}
		res.PCR11Steps[b.Name] = steps
		res.PCRs[b.Name] = map[string]string{
			"11": hex.EncodeToString(pcr11),
			"12": hex.EncodeToString(pcr12),
			"9":  hex.EncodeToString(pcr9(b, secs)),
			"7":  hex.EncodeToString(PCR7(b, pcr7Events)),
		}
	}
	return res, nil
}

// pcr9 follows Linux 6.1's EFI stub as systemd-stub 252 starts it: the load
// options (the embedded command line the stub hands over, UTF-16LE with its
// NUL terminator), then the initrd served through LINUX_EFI_INITRD_MEDIA.
// Both are EV_EVENT_TAG events whose digest is of the measured bytes.
func pcr9(b measure.Bank, secs []Section) []byte {
	v := b.Zero()
	if cmd, ok := sectionData(secs, ".cmdline"); ok {
		v = b.ExtendValue(v, b.Digest(utf16z(string(bytes.TrimRight(cmd, "\x00")))))
	}
	if initrd, ok := sectionData(secs, ".initrd"); ok {
		v = b.ExtendValue(v, b.Digest(initrd))
	}
	return v
}

func utf16z(s string) []byte {
	u := utf16.Encode([]rune(s))
	out := make([]byte, 0, 2*len(u)+2)
	for _, c := range u {
		out = append(out, byte(c), byte(c>>8))
	}
	return append(out, 0, 0)
}
