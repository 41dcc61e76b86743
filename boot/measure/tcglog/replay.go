package tcglog

import (
	"fmt"

	"inert/boot/measure"
)

// Replay extends every event's digests from zero, per bank, and returns the
// PCR values the log claims. EV_NO_ACTION events are not extended (the TCG
// spec says so; they carry the header and OVMF's startup locality, which
// only matters for PCR 0).
func Replay(events []Event) measure.Values {
	out := measure.Values{}
	for _, e := range events {
		if e.Type == EvNoAction {
			continue
		}
		for name, d := range e.Digests {
			b, err := measure.BankByName(name)
			if err != nil {
				continue
			}
			old := out.Get(name, e.PCR)
			if old == nil {
				old = b.Zero()
			}
			out.Set(name, e.PCR, b.ExtendValue(old, d))
		}
	}
	return out
}

// OfPCR returns the events that extend pcr, in log order.
func OfPCR(events []Event, pcr int) []Event {
	var out []Event
	for _, e := range events {
		if e.PCR == pcr && e.Type != EvNoAction {
			out = append(out, e)
		}
	}
	return out
}

// Describe renders one event for a person: index, PCR, type, the sha256
// digest and a readable form of the data where the type has one.
func (e Event) Describe() string {
	detail := ""
	switch e.Type {
	case EvEFIVariableDriverConfig, EvEFIVariableAuthority, EvEFIVariableBoot, EvEFIVariableBoot2:
		if v, err := ParseVariableData(e.Data); err == nil {
			detail = fmt.Sprintf("%s %s (%d bytes)", v.VendorGUID, v.Name, len(v.Data))
		}
	case EvEFIAction, EvAction, EvSeparator, EvIPL:
		detail = fmt.Sprintf("%q", printable(e.Data, 80))
	case EvEventTag:
		if t, err := ParseTaggedEvent(e.Data); err == nil {
			detail = fmt.Sprintf("tag 0x%08x %q", t.ID, printable(t.Data, 80))
		}
	default:
		detail = fmt.Sprintf("%d bytes", len(e.Data))
	}
	return fmt.Sprintf("#%d pcr%d %s sha256=%x %s", e.Index, e.PCR, e.Type, e.Digests["sha256"], detail)
}

func printable(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	out := make([]rune, 0, len(b))
	for _, c := range b {
		if c >= 0x20 && c < 0x7f {
			out = append(out, rune(c))
		} else {
			out = append(out, '.')
		}
	}
	return string(out)
}
