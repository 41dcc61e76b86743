package luks2

import (
	"crypto/aes"
	"fmt"

	"golang.org/x/crypto/xts"
)

// SectorSize is the unit of XTS tweaks in keyslot areas (plain64 counts
// 512-byte sectors from the start of the area).
const SectorSize = 512

// CipherXTS is the only cipher inert writes and accepts, for keyslot areas
// and data alike.
const CipherXTS = "aes-xts-plain64"

// afSectors is the size of a keyslot's AF material rounded up to sectors.
func afSectors(keySize, stripes int) int {
	return (keySize*stripes + SectorSize - 1) / SectorSize * SectorSize
}

// cryptArea encrypts (or decrypts) buf in place, sector by sector, with
// aes-xts-plain64 under key.
func cryptArea(encryption string, key, buf []byte, encrypt bool) error {
	if encryption != CipherXTS {
		return fmt.Errorf("%w: keyslot encryption %q", ErrCipher, encryption)
	}
	if len(key) != 32 && len(key) != 64 {
		return fmt.Errorf("%w: keyslot XTS key of %d bytes", ErrKeySize, len(key))
	}
	if len(buf)%SectorSize != 0 {
		return fmt.Errorf("%w: keyslot material is not whole sectors", ErrCorruptHeader)
	}
	c, err := xts.NewCipher(aes.NewCipher, key)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrKeySize, err)
	}
	for i := 0; i < len(buf)/SectorSize; i++ {
		s := buf[i*SectorSize : (i+1)*SectorSize]
		if encrypt {
			c.Encrypt(s, s, uint64(i))
		} else {
			c.Decrypt(s, s, uint64(i))
		}
	}
	return nil
}
