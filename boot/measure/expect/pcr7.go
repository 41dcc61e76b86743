package expect

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/foxboron/go-uefi/authenticode"

	"inert/boot/measure"
	"inert/boot/measure/tcglog"
)

var (
	// ErrSecureBootKeys is a key directory whose enrolment lists are missing
	// or malformed.
	ErrSecureBootKeys = errors.New("secure boot keys unusable")
	// ErrNotAuthorized is a UKI that no db certificate verifies: firmware
	// with those keys enrolled refuses to boot it, so there is no PCR 7.
	ErrNotAuthorized = errors.New("no db certificate verifies the UKI")
)

// SecureBoot is the Secure Boot state firmware measures into PCR 7. The
// lists are the EFI_SIGNATURE_LIST bytes as enrolled (the payload of the
// .auth updates); nil means not enrolled, which OVMF measures as an empty
// variable.
type SecureBoot struct {
	Enabled          bool
	PK, KEK, DB, DBX []byte
}

// Off is OVMF with nothing enrolled (setup mode): SecureBoot=0 and empty
// PK, KEK, db and dbx.
var Off = SecureBoot{}

// LoadSecureBoot reads the enrolment lists `inert keys` writes:
// dir/enrol/{PK,KEK,db}.esl, and dir/enrol/dbx.esl when there is one.
func LoadSecureBoot(dir string) (SecureBoot, error) {
	sb := SecureBoot{Enabled: true}
	for _, f := range []struct {
		name     string
		dst      *[]byte
		optional bool
	}{{"PK", &sb.PK, false}, {"KEK", &sb.KEK, false}, {"db", &sb.DB, false}, {"dbx", &sb.DBX, true}} {
		b, err := os.ReadFile(filepath.Join(dir, "enrol", f.name+".esl"))
		if errors.Is(err, os.ErrNotExist) && f.optional {
			continue
		}
		if err != nil {
			return sb, fmt.Errorf("%w: %v", ErrSecureBootKeys, err)
		}
		if _, err := ParseSignatureLists(b); err != nil {
			return sb, fmt.Errorf("%w: %s.esl: %w", ErrSecureBootKeys, f.name, err)
		}
		*f.dst = b
	}
	return sb, nil
}

// PCR7Event is one event firmware measures into PCR 7.
type PCR7Event struct {
	Type tcglog.EventType
	// Variable is set for the EV_EFI_VARIABLE_* events.
	Variable *tcglog.VariableData
	// Data is what is hashed: UEFI_VARIABLE_DATA, or the separator's four
	// zero bytes.
	Data []byte
}

// String names the event for `inert expect`.
func (e PCR7Event) String() string {
	if e.Variable != nil {
		return fmt.Sprintf("%s %s (%d bytes)", e.Type, e.Variable.Name, len(e.Variable.Data))
	}
	return e.Type.String()
}

// PCR7Events are the events OVMF (edk2's Tcg2Dxe and DxeImageVerificationLib)
// measures into PCR 7 up to the UKI's start: EV_EFI_VARIABLE_DRIVER_CONFIG for
// SecureBoot, PK, KEK, db and dbx (absent variables measured empty), the
// EV_SEPARATOR, and with Secure Boot on one EV_EFI_VARIABLE_AUTHORITY for the
// db entry (EFI_SIGNATURE_DATA: owner GUID, certificate) that verified the
// UKI. Checked against OVMF's firmware log by the end-to-end suite.
func PCR7Events(uki []byte, sb SecureBoot) ([]PCR7Event, error) {
	out := driverConfigEvents(sb)
	if !sb.Enabled {
		return out, nil
	}
	entry, err := authority(uki, sb.DB)
	if err != nil {
		return nil, err
	}
	return append(out, authorityEvent(entry)), nil
}

// driverConfigEvents are the variable events and the separator: everything
// in PCR 7 that does not depend on the image.
func driverConfigEvents(sb SecureBoot) []PCR7Event {
	secureBoot := []byte{0}
	if sb.Enabled {
		secureBoot = []byte{1}
	}
	vars := []tcglog.VariableData{
		{VendorGUID: tcglog.GlobalVariable, Name: "SecureBoot", Data: secureBoot},
		{VendorGUID: tcglog.GlobalVariable, Name: "PK", Data: sb.PK},
		{VendorGUID: tcglog.GlobalVariable, Name: "KEK", Data: sb.KEK},
		{VendorGUID: tcglog.ImageSecurityDatabase, Name: "db", Data: sb.DB},
		{VendorGUID: tcglog.ImageSecurityDatabase, Name: "dbx", Data: sb.DBX},
	}
	var out []PCR7Event
	for i := range vars {
		out = append(out, PCR7Event{Type: tcglog.EvEFIVariableDriverConfig, Variable: &vars[i], Data: vars[i].Encode()})
	}
	return append(out, PCR7Event{Type: tcglog.EvSeparator, Data: make([]byte, 4)})
}

// authorityEvent is the EV_EFI_VARIABLE_AUTHORITY for one db entry.
func authorityEvent(entry []byte) PCR7Event {
	v := tcglog.VariableData{VendorGUID: tcglog.ImageSecurityDatabase, Name: "db", Data: entry}
	return PCR7Event{Type: tcglog.EvEFIVariableAuthority, Variable: &v, Data: v.Encode()}
}

// PCR7 extends the events' hashes from zero in one bank.
func PCR7(b measure.Bank, events []PCR7Event) []byte {
	v := b.Zero()
	for _, e := range events {
		v = b.ExtendValue(v, b.Digest(e.Data))
	}
	return v
}

// authority returns the first X.509 entry of db (owner GUID + DER, as
// firmware walks db in order) whose certificate verifies the UKI's
// Authenticode signature.
func authority(uki, db []byte) ([]byte, error) {
	bin, err := authenticode.Parse(bytes.NewReader(uki))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotUKI, err)
	}
	lists, err := ParseSignatureLists(db)
	if err != nil {
		return nil, fmt.Errorf("%w: db: %w", ErrSecureBootKeys, err)
	}
	for _, l := range lists {
		if l.Type != certX509 {
			continue
		}
		for _, e := range l.Entries {
			cert, err := x509.ParseCertificate(e[16:])
			if err != nil {
				continue
			}
			if ok, err := bin.Verify(cert); err == nil && ok {
				return e, nil
			}
		}
	}
	return nil, ErrNotAuthorized
}

// certX509 is EFI_CERT_X509_GUID in memory order.
var certX509 = mustGUID("a5c059a1-94e4-4aa7-87b5-ab155c2bf072")

func mustGUID(s string) tcglog.GUID {
	g, err := tcglog.ParseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

// SignatureList is one EFI_SIGNATURE_LIST: its type and its
// EFI_SIGNATURE_DATA entries (owner GUID followed by the signature).
type SignatureList struct {
	Type    tcglog.GUID
	Entries [][]byte
}

// ErrSignatureList is a malformed EFI_SIGNATURE_LIST.
var ErrSignatureList = errors.New("malformed EFI_SIGNATURE_LIST")

// ParseSignatureLists decodes concatenated EFI_SIGNATURE_LISTs: type GUID,
// ListSize, HeaderSize, SignatureSize (u32 each), the header, then entries
// of SignatureSize bytes.
func ParseSignatureLists(b []byte) ([]SignatureList, error) {
	var out []SignatureList
	for len(b) > 0 {
		if len(b) < 28 {
			return nil, fmt.Errorf("%w: %d trailing bytes", ErrSignatureList, len(b))
		}
		var l SignatureList
		copy(l.Type[:], b)
		listSize := binary.LittleEndian.Uint32(b[16:])
		headerSize := binary.LittleEndian.Uint32(b[20:])
		sigSize := binary.LittleEndian.Uint32(b[24:])
		if uint64(listSize) > uint64(len(b)) || uint64(listSize) < 28+uint64(headerSize) || sigSize < 16 ||
			(uint64(listSize)-28-uint64(headerSize))%uint64(sigSize) != 0 {
			return nil, fmt.Errorf("%w: sizes list=%d header=%d entry=%d of %d bytes", ErrSignatureList, listSize, headerSize, sigSize, len(b))
		}
		body := b[28+headerSize : listSize]
		for len(body) > 0 {
			l.Entries = append(l.Entries, body[:sigSize:sigSize])
			body = body[sigSize:]
		}
		out = append(out, l)
		b = b[listSize:]
	}
	return out, nil
}

// hexEvents lists PCR 7's events for the JSON output.
func hexEvents(events []PCR7Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.String()
	}
	return out
}
