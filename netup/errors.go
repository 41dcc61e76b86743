package netup

import "errors"

// Sentinel errors; callers match them with errors.Is.
var (
	// ErrNoSysfs means the sysfs network class directory could not be read.
	ErrNoSysfs = errors.New("netup: cannot read sysfs network interfaces")
	// ErrNoNIC means no usable physical network interface exists.
	ErrNoNIC = errors.New("netup: no network interface found")
	// ErrTimeout is returned by a named wait whose deadline passed.
	ErrTimeout = errors.New("netup: wait timed out")
	// ErrNoCarrier means a wired link had no carrier within its wait.
	ErrNoCarrier = errors.New("netup: no carrier")
	// ErrNoAnswer means no DHCP server answered.
	ErrNoAnswer = errors.New("netup: no DHCP answer")
	// ErrNAK means a DHCP server refused the request.
	ErrNAK = errors.New("netup: DHCP request refused (NAK)")
	// ErrBadLease means a DHCP answer lacked a usable address or was malformed.
	ErrBadLease = errors.New("netup: unusable DHCP lease")
	// ErrBadValue means a value was refused by a file writer's validation.
	ErrBadValue = errors.New("netup: invalid network value")
	// ErrParse means a primary-net or resolv.conf file did not parse.
	ErrParse = errors.New("netup: malformed network file")
	// ErrConfig means the Config given to New is incomplete.
	ErrConfig = errors.New("netup: incomplete configuration")
	// ErrLink means a netlink operation on a link failed.
	ErrLink = errors.New("netup: link operation failed")
	// ErrWifi means WiFi bring-up failed; the wrapped text says how.
	ErrWifi = errors.New("netup: wifi failed")
)
