package measure

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
)

// Values holds PCR values per bank name and PCR index.
type Values map[string]map[int][]byte

// Get returns a PCR value, or nil when not present.
func (v Values) Get(bank string, pcr int) []byte {
	if v == nil || v[bank] == nil {
		return nil
	}
	return v[bank][pcr]
}

// Set stores a PCR value (copied).
func (v Values) Set(bank string, pcr int, value []byte) {
	if v[bank] == nil {
		v[bank] = map[int][]byte{}
	}
	v[bank][pcr] = bytes.Clone(value)
}

// Clone copies v deeply.
func (v Values) Clone() Values {
	out := Values{}
	for bank, pcrs := range v {
		for pcr, val := range pcrs {
			out.Set(bank, pcr, val)
		}
	}
	return out
}

// Hex renders v as bank -> "pcr" -> hex, the form evidence.json and
// `inert expect` print.
func (v Values) Hex() map[string]map[string]string {
	out := map[string]map[string]string{}
	for bank, pcrs := range v {
		out[bank] = map[string]string{}
		for pcr, val := range pcrs {
			out[bank][fmt.Sprint(pcr)] = hex.EncodeToString(val)
		}
	}
	return out
}

// Banks lists the bank names in v, sorted.
func (v Values) Banks() []string {
	var out []string
	for b := range v {
		out = append(out, b)
	}
	sort.Strings(out)
	return out
}

// Replay extends, for every record and every bank it carries, the record's
// digest onto start (a PCR missing from start begins at zero). start is not
// modified; nil start means all zeros. The result holds every bank/PCR that
// start or the log mentions.
func Replay(records []Record, start Values) (Values, error) {
	out := start.Clone()
	for i, r := range records {
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("replay record %d: %w", i, err)
		}
		for _, d := range r.Digests {
			b, _ := BankByName(d.HashAlg)
			digest, _ := hex.DecodeString(d.Digest)
			old := out.Get(b.Name, r.PCR)
			if old == nil {
				old = b.Zero()
			}
			out.Set(b.Name, r.PCR, b.ExtendValue(old, digest))
		}
	}
	return out, nil
}

// ReadLog reads and decodes a log file, taking the shared lock systemd's
// readers take so a record being written is never read half-way. A log whose
// sticky bit is set was left mid-extend by its writer and is reported as
// incomplete (ErrLogFormat).
func ReadLog(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read event log: %w", err)
	}
	defer f.Close()
	if err := lockShared(f); err != nil {
		return nil, fmt.Errorf("%w: lock %s: %v", ErrLog, path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read event log: %w", err)
	}
	if fi.Mode()&os.ModeSticky != 0 {
		return nil, fmt.Errorf("%w: %s is marked incomplete (writer died mid-extend)", ErrLogFormat, path)
	}
	const maxLog = 16 << 20
	data := make([]byte, 0, min(fi.Size(), maxLog))
	buf := bytes.NewBuffer(data)
	if _, err := buf.ReadFrom(limitReader(f, maxLog+1)); err != nil {
		return nil, fmt.Errorf("read event log: %w", err)
	}
	if buf.Len() > maxLog {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrLogFormat, path, maxLog)
	}
	return DecodeRecords(buf.Bytes())
}
