package storage

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Zone names (CONTRACTS §3): GPT partition names ZONE_PRIMARY or ZONE_<ID>.
const (
	ZonePrefix  = "ZONE_"
	ZonePrimary = "ZONE_PRIMARY"
)

var (
	// ErrNoZone: no partition qualifies for the ring address.
	ErrNoZone = errors.New("no zone partition")
	// ErrAmbiguousZone: several partitions qualify equally.
	ErrAmbiguousZone = errors.New("ambiguous zone partitions")
	// ErrZoneName: a ZONE_ partition name breaks the naming rule.
	ErrZoneName = errors.New("invalid zone partition name")

	zoneIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,26}$`)
)

// Partition is a block-device partition that carries a zone name.
type Partition struct {
	Name     string // kernel name: vdb1, nvme0n1p2
	Disk     string // kernel name of the whole disk: vdb, nvme0n1
	PartName string // GPT partition name: ZONE_PRIMARY
	DevPath  string // device node: /dev/vdb1
	Size     uint64 // bytes
}

// IsZoneName reports whether a GPT name claims to be a zone (ZONE_ prefix),
// valid or not.
func IsZoneName(name string) bool { return strings.HasPrefix(name, ZonePrefix) }

// ValidateZoneName checks ZONE_ + [A-Za-z0-9_-]{1,26}.
func ValidateZoneName(name string) error {
	if !IsZoneName(name) || !zoneIDRE.MatchString(name[len(ZonePrefix):]) {
		return fmt.Errorf("%w: %q (want %s + 1-26 of [A-Za-z0-9_-])", ErrZoneName, name, ZonePrefix)
	}
	return nil
}

// Select picks the zone partition for ringAddress: the most specific
// ZONE_<prefix> whose prefix starts the ring address; without one, the only
// ZONE_PRIMARY. Equally specific candidates are ErrAmbiguousZone: inert never
// guesses which disk holds a node's data.
func Select(parts []Partition, ringAddress string) (Partition, error) {
	var best []Partition
	bestLen := 0
	var primaries []Partition
	for _, p := range parts {
		if ValidateZoneName(p.PartName) != nil {
			continue
		}
		if p.PartName == ZonePrimary {
			primaries = append(primaries, p)
			continue
		}
		prefix := p.PartName[len(ZonePrefix):]
		if ringAddress == "" || !strings.HasPrefix(ringAddress, prefix) {
			continue
		}
		switch {
		case len(prefix) > bestLen:
			best, bestLen = []Partition{p}, len(prefix)
		case len(prefix) == bestLen:
			best = append(best, p)
		}
	}
	switch {
	case len(best) == 1:
		return best[0], nil
	case len(best) > 1:
		return Partition{}, fmt.Errorf("%w: %s", ErrAmbiguousZone, describe(best))
	case len(primaries) == 1:
		return primaries[0], nil
	case len(primaries) > 1:
		return Partition{}, fmt.Errorf("%w: %s", ErrAmbiguousZone, describe(primaries))
	}
	return Partition{}, fmt.Errorf("%w for ring address %q", ErrNoZone, ringAddress)
}

func describe(ps []Partition) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.PartName+" on "+p.Name)
	}
	return strings.Join(s, ", ")
}
