package storage

import (
	"context"
	"errors"
	"fmt"
)

// ServiceRequest is what `inert zone open` asks for (hyperbeam's "service"
// key source): the zone name and ring address the node joined with, and the
// zone secret the service received.
type ServiceRequest struct {
	ZoneName    string
	RingAddress string
	// PartName, when set, pins the GPT name; otherwise the partition is
	// selected by RingAddress (CONTRACTS §3).
	PartName string
	// Secret is the zone secret; the caller clears it after the call.
	Secret []byte
}

// ErrServiceRequest: the request is incomplete.
var ErrServiceRequest = errors.New("invalid zone open request")

// OpenForService selects the zone partition under root (disks as recorded
// before the lockdown) and opens or provisions it with the zone key of
// CONTRACTS §3, derived here and cleared before returning.
func (p *Provisioner) OpenForService(ctx context.Context, root string, disks DiscoverOptions, spec Spec, req ServiceRequest) (State, error) {
	if req.ZoneName == "" || len(req.Secret) == 0 {
		return State{}, fmt.Errorf("%w: a zone name and a non-empty secret are required", ErrServiceRequest)
	}
	found, err := Discover(root, disks)
	if err != nil {
		return State{}, err
	}
	var part Partition
	if req.PartName != "" {
		part, err = exactly(found.Zones, req.PartName)
	} else {
		part, err = Select(found.Zones, req.RingAddress)
	}
	if err != nil {
		return State{Zone: req.ZoneName, Reason: err.Error()}, err
	}
	key := ZoneKey(req.ZoneName, req.RingAddress, req.Secret)
	defer lockKey(key)()
	st, err := p.Provision(ctx, part, spec, StaticKey{Source: "service", Key: key})
	st.Zone = req.ZoneName
	return st, err
}

// exactly finds the one usable partition with a GPT name.
func exactly(parts []Partition, name string) (Partition, error) {
	var match []Partition
	for _, p := range parts {
		if p.PartName == name {
			match = append(match, p)
		}
	}
	switch len(match) {
	case 0:
		return Partition{}, fmt.Errorf("%w named %s", ErrNoZone, name)
	case 1:
		return match[0], nil
	}
	return Partition{}, fmt.Errorf("%w: %s", ErrAmbiguousZone, describe(match))
}
