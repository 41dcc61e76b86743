package storage

import "crypto/sha256"

// zoneKeyDomain separates the zone key from every other use of sha256.
const zoneKeyDomain = "LapEE zone nonvolatile storage v1"

// ZoneKey is the hyperbeam zone key of CONTRACTS §3:
// sha256("LapEE zone nonvolatile storage v1" 0x00 zoneName 0x00 ringAddress
// 0x00 zoneSecret). The caller clears it after use; it never reaches a disk,
// a file, a log or an argument.
func ZoneKey(zoneName, ringAddress string, zoneSecret []byte) []byte {
	h := sha256.New()
	h.Write([]byte(zoneKeyDomain))
	h.Write([]byte{0})
	h.Write([]byte(zoneName))
	h.Write([]byte{0})
	h.Write([]byte(ringAddress))
	h.Write([]byte{0})
	h.Write(zoneSecret)
	return h.Sum(nil)
}
