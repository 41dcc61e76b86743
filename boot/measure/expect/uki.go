package expect

import (
	"bytes"
	"debug/pe"
	"errors"
	"fmt"
)

var (
	// ErrNotUKI is a file that is not a PE image with a .linux section.
	ErrNotUKI = errors.New("not a unified kernel image")
	// ErrNoUKIInImage is a disk image without a readable UKI on an ESP.
	ErrNoUKIInImage = errors.New("no UKI found in disk image")
)

// StubSections are the UKI sections systemd-stub 252 measures into PCR 11,
// in the order it measures them (its own enum order, not file order). It
// skips .pcrsig, .uname and .sbat.
var StubSections = []string{".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".dtb", ".pcrpkey"}

// Section is one UKI section's bytes as the stub sees them in memory.
type Section struct {
	Name string
	Data []byte
}

// ParseUKI returns the measured sections present in a UKI, in StubSections
// order. Each section's data is its VirtualSize bytes as loaded: the raw
// bytes cut to VirtualSize, or zero-padded when VirtualSize is larger.
func ParseUKI(uki []byte) ([]Section, error) {
	f, err := pe.NewFile(bytes.NewReader(uki))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotUKI, err)
	}
	defer f.Close()
	byName := map[string]*pe.Section{}
	for _, s := range f.Sections {
		if _, dup := byName[s.Name]; dup {
			return nil, fmt.Errorf("%w: section %s appears twice", ErrNotUKI, s.Name)
		}
		byName[s.Name] = s
	}
	if byName[".linux"] == nil {
		return nil, fmt.Errorf("%w: no .linux section", ErrNotUKI)
	}
	var out []Section
	for _, name := range StubSections {
		s := byName[name]
		if s == nil {
			continue
		}
		raw, err := s.Data()
		if err != nil {
			return nil, fmt.Errorf("%w: section %s: %v", ErrNotUKI, name, err)
		}
		// A section bigger in memory than the whole file is not something
		// inert builds; refusing it also bounds the allocation.
		if int64(s.VirtualSize) > int64(len(uki)) {
			return nil, fmt.Errorf("%w: section %s VirtualSize %d exceeds the file", ErrNotUKI, name, s.VirtualSize)
		}
		size := int(s.VirtualSize)
		data := make([]byte, size)
		copy(data, raw)
		out = append(out, Section{Name: name, Data: data})
	}
	return out, nil
}

// sectionData returns a parsed section's data.
func sectionData(secs []Section, name string) ([]byte, bool) {
	for _, s := range secs {
		if s.Name == name {
			return s.Data, true
		}
	}
	return nil, false
}
