package storage

import (
	"bytes"
	"fmt"
	"io"

	"inert/storage/luks2"
)

// Marker is the provisioning marker at offset 0 of a zone partition
// (CONTRACTS §3): the operator's consent to format it.
const Marker = "LapEE nonvolatile provisioning marker v1\n"

// Action is what provisioning does with a zone partition.
type Action int

// The three outcomes of the marker gate.
const (
	// Leave: neither LUKS nor marked; nothing is written.
	Leave Action = iota
	// Open: a LUKS header; never reformatted.
	Open
	// Format: no LUKS header and the marker is present.
	Format
)

func (a Action) String() string {
	return [...]string{"leave", "open", "format"}[a]
}

// Decision is the marker gate's verdict and the reason a person reads.
type Decision struct {
	Action Action
	Reason string
}

// probeSize is how much of the partition the gate reads.
const probeSize = 4096

// Decide applies the marker gate to the first bytes of a partition: LUKS ->
// open; not LUKS and the marker -> format; anything else -> leave untouched.
func Decide(first []byte) Decision {
	switch {
	case luks2.IsLUKS(first):
		return Decision{Open, "LUKS header present"}
	case bytes.HasPrefix(first, []byte(Marker)):
		return Decision{Format, "provisioning marker present, no LUKS header"}
	case len(first) < len(Marker):
		return Decision{Leave, "partition too small to carry the provisioning marker"}
	}
	return Decision{Leave, "no LUKS header and no provisioning marker: left untouched"}
}

// Probe reads the start of a partition and decides.
func Probe(dev io.ReaderAt) (Decision, error) {
	first := make([]byte, probeSize)
	n, err := dev.ReadAt(first, 0)
	if n < len(first) && err != nil && err != io.EOF {
		return Decision{}, fmt.Errorf("read partition start: %w", err)
	}
	return Decide(first[:n]), nil
}
