package storage

import "golang.org/x/sys/unix"

// lockKey keeps key out of swap (best effort: mlock can fail under
// RLIMIT_MEMLOCK, which leaves the key no worse off) and returns the function
// that zeroes and unlocks it. Every key and passphrase in this package goes
// through it and is released with defer.
func lockKey(key []byte) (release func()) {
	locked := len(key) > 0 && unix.Mlock(key) == nil
	return func() {
		clear(key)
		if locked {
			_ = unix.Munlock(key)
		}
	}
}
