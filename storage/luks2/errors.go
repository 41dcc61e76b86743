package luks2

import "errors"

// Sentinels. Every error this package returns wraps exactly one of them (with
// context), so callers can errors.Is and pick the status line and the action.
var (
	// ErrNotLUKS2: the primary binary header lacks the LUKS magic or version 2.
	ErrNotLUKS2 = errors.New("not a LUKS2 header")
	// ErrCorruptHeader: a binary header or its JSON area is malformed or
	// fails its checksum.
	ErrCorruptHeader = errors.New("corrupt LUKS2 header")
	// ErrHeaderMismatch: primary and backup header do not agree.
	ErrHeaderMismatch = errors.New("LUKS2 primary and backup headers disagree")
	// ErrInterruptedUpdate: the backup header is exactly one update ahead of
	// the primary (a metadata rewrite stopped between its two writes).
	ErrInterruptedUpdate = errors.New("LUKS2 header update was interrupted")
	// ErrTruncated: the device is smaller than the header says it must be.
	ErrTruncated = errors.New("device truncated below LUKS2 layout")
	// ErrWrongKey: no keyslot opens with the given passphrase.
	ErrWrongKey = errors.New("no LUKS2 keyslot matches the key")
	// ErrUnsupported: a valid LUKS2 feature inert does not implement.
	ErrUnsupported = errors.New("unsupported LUKS2 feature")
	// ErrBadOptions: the caller asked the writer for something invalid.
	ErrBadOptions = errors.New("invalid LUKS2 format options")
	// ErrDeviceTooSmall: the device cannot hold the layout and some data.
	ErrDeviceTooSmall = errors.New("device too small for a LUKS2 volume")

	// Policy sentinels (Check).
	ErrCipher      = errors.New("LUKS2 cipher not allowed")
	ErrKeySize     = errors.New("LUKS2 key size not allowed")
	ErrKDF         = errors.New("LUKS2 KDF parameters not allowed")
	ErrAreaOutside = errors.New("LUKS2 area outside its region or the device")
	ErrAreaOverlap = errors.New("LUKS2 areas overlap")
	ErrJSONSize    = errors.New("LUKS2 JSON area size not allowed")
	ErrLayout      = errors.New("LUKS2 layout not allowed")
)
