// Package luks2 owns the LUKS2 on-disk format as inert uses it: it writes
// volumes (binary headers, JSON metadata, AF-split keyslots, PBKDF2 and argon2id
// KDFs, tokens), reads both header copies into one in-memory snapshot with
// strict checks, holds the policy a header must satisfy before it is trusted,
// and recovers the volume key from that snapshot, never from the disk again.
//
// The format follows the LUKS2 on-disk specification and is checked against
// cryptsetup 2.6 in both directions (see the oracle tests). Layout written by
// Format, for the default 16 KiB header:
//
//	0        primary binary header (4 KiB) + JSON area (12 KiB)
//	16 KiB   backup binary header + JSON area
//	32 KiB   keyslots area (keyslots_size bytes), one 4 KiB-aligned area per keyslot
//	offset   encrypted data segment, to the end of the device
//
// The data offset is 16 MiB, like cryptsetup's default, on devices of 64 MiB
// and more; smaller devices (test images, small partitions) get 4 MiB, which
// still holds 15 keyslots of 512-bit keys. Data sectors are 512 bytes by
// default because every disk supports them.
package luks2
