package netup

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

// Client is the DHCPv4 exchange netup needs; production uses NClient4,
// tests a scripted fake. Errors wrap ErrNoAnswer, ErrNAK or ErrBadLease.
type Client interface {
	// Acquire runs discover/offer/request/ack on the unconfigured link.
	Acquire(ctx context.Context, iface string) (Lease, error)
	// Renew asks the server that granted held to extend it.
	Renew(ctx context.Context, iface string, held Lease) (Lease, error)
}

// NClient4 is the production Client over insomniacslk/dhcp's nclient4. It
// opens the raw packet socket only for the length of one exchange: a socket
// left open would copy every IPv4 packet of a busy service to netup.
type NClient4 struct {
	// Timeout is the first retransmission wait (doubling), Retries the
	// number of sends per message. Zero values mean 2 s and 3.
	Timeout time.Duration
	Retries int
	// Clock stamps leases; nil means the real clock.
	Clock Clock
}

// requested are the options inert uses; servers send only what is asked.
var requested = dhcpv4.WithRequestedOptions(
	dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer,
	dhcpv4.OptionDomainName, dhcpv4.OptionDNSDomainSearchList,
	dhcpv4.OptionIPAddressLeaseTime, dhcpv4.OptionRenewTimeValue, dhcpv4.OptionRebindingTimeValue)

func (c NClient4) open(iface string) (*nclient4.Client, error) {
	timeout, retries := c.Timeout, c.Retries
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	if retries <= 0 {
		retries = 3
	}
	cl, err := nclient4.New(iface, nclient4.WithTimeout(timeout), nclient4.WithRetry(retries))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: open DHCP socket: %v", ErrLink, iface, err)
	}
	return cl, nil
}

func (c NClient4) now() time.Time {
	if c.Clock == nil {
		return time.Now()
	}
	return c.Clock.Now()
}

// Acquire implements Client.
func (c NClient4) Acquire(ctx context.Context, iface string) (Lease, error) {
	cl, err := c.open(iface)
	if err != nil {
		return Lease{}, err
	}
	defer cl.Close()
	raw, err := cl.Request(ctx, requested)
	if err != nil {
		return Lease{}, classifyDHCP(iface, err)
	}
	l, err := leaseFromACK(iface, raw.ACK, c.now())
	if err != nil {
		return Lease{}, fmt.Errorf("%s: %w", iface, err)
	}
	l.raw = raw
	return l, nil
}

// Renew implements Client.
func (c NClient4) Renew(ctx context.Context, iface string, held Lease) (Lease, error) {
	if held.raw == nil {
		return Lease{}, fmt.Errorf("%w: %s: lease was not granted by this client", ErrBadLease, iface)
	}
	cl, err := c.open(iface)
	if err != nil {
		return Lease{}, err
	}
	defer cl.Close()
	raw, err := cl.Renew(ctx, held.raw, requested)
	if err != nil {
		return Lease{}, classifyDHCP(iface, err)
	}
	l, err := leaseFromACK(iface, raw.ACK, c.now())
	if err != nil {
		return Lease{}, fmt.Errorf("%s: %w", iface, err)
	}
	l.raw = raw
	return l, nil
}

// classifyDHCP maps the library's errors onto netup's sentinels; the
// server's NAK message is outside input and is not copied into the error.
func classifyDHCP(iface string, err error) error {
	var nak *nclient4.ErrNak
	switch {
	case errors.As(err, &nak):
		return fmt.Errorf("%w: %s", ErrNAK, iface)
	case errors.Is(err, nclient4.ErrNoResponse):
		return fmt.Errorf("%w: %s", ErrNoAnswer, iface)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", iface, err)
	default:
		return fmt.Errorf("%w: %s: %v", ErrNoAnswer, iface, err)
	}
}
