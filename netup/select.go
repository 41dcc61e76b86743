package netup

// selector decides the primary network from the leases held on all links:
// the first lease with a router to arrive stays primary while it is held;
// when it goes, the earliest remaining lease with a router takes over.
// It is pure bookkeeping; Net applies what it decides.
type selector struct {
	next    int
	held    map[string]heldLease
	primary string // iface of the primary, "" when none
}

type heldLease struct {
	lease Lease
	order int // arrival of the first lease on this link
}

func newSelector() *selector { return &selector{held: map[string]heldLease{}} }

// put records a new or renewed lease and returns the resulting primary.
func (s *selector) put(l Lease) (Lease, bool) {
	h, ok := s.held[l.Iface]
	if !ok {
		h.order = s.next
		s.next++
	}
	h.lease = l
	s.held[l.Iface] = h
	return s.choose()
}

// drop forgets the lease on iface and returns the resulting primary.
func (s *selector) drop(iface string) (Lease, bool) {
	delete(s.held, iface)
	return s.choose()
}

func (s *selector) choose() (Lease, bool) {
	if h, ok := s.held[s.primary]; ok && h.lease.HasRouter() {
		return h.lease, true
	}
	s.primary = ""
	best := -1
	for iface, h := range s.held {
		if h.lease.HasRouter() && (best < 0 || h.order < best) {
			best, s.primary = h.order, iface
		}
	}
	if s.primary == "" {
		return Lease{}, false
	}
	return s.held[s.primary].lease, true
}
