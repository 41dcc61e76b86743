package storage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// VolumeIDFile is written at the root of a zone filesystem when inert
// provisions it, and read at every open: the volume names itself from
// inside the encryption, so evidence ("volume-id" in zones.json) comes from
// the data the service sees rather than from the unauthenticated LUKS
// header alone. The name is inert's so it cannot collide with the service's
// files.
const VolumeIDFile = ".inert-volume-id"

// volumeIDVersion is the first line's value; a reader refuses others.
const volumeIDVersion = "inert-volume-id-v1"

// maxVolumeID bounds what is read of the file (outside input: the service
// can write its own filesystem).
const maxVolumeID = 4096

var (
	// ErrVolumeID: the volume-id file is missing, unreadable or malformed.
	ErrVolumeID = errors.New("zone volume-id file unusable")
	// ErrVolumeIDMismatch: the file names another LUKS volume than the one
	// it was read from (a filesystem copied between volumes).
	ErrVolumeIDMismatch = errors.New("zone volume-id names another volume")

	uuidRE     = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	idValueRE  = regexp.MustCompile(`^[A-Za-z0-9_.:+/-]{0,128}$`)
	idKeyOrder = []string{"version", "volume-id", "luks-uuid", "label", "partition", "partname", "key-source", "cipher", "key-bits", "created"}
)

// VolumeID is the content of VolumeIDFile: the LUKS UUID the volume was
// formatted with (its id) and the facts of its creation.
type VolumeID struct {
	ID        string    // the volume id: the LUKS2 UUID at formatting
	Label     string    // LUKS2 and ext4 label
	Partition string    // kernel name at creation (vdb1)
	PartName  string    // GPT name (ZONE_PRIMARY)
	KeySource string    // tpm, snp, service
	Cipher    string    // aes-xts-plain64
	KeyBits   int       // volume key size
	Created   time.Time // the appliance's clock at formatting, UTC, seconds
}

// Marshal renders the file: key=value lines in a fixed order, version first.
func (v VolumeID) Marshal() ([]byte, error) {
	vals := map[string]string{
		"version": volumeIDVersion, "volume-id": v.ID, "luks-uuid": v.ID, "label": v.Label,
		"partition": v.Partition, "partname": v.PartName, "key-source": v.KeySource,
		"cipher": v.Cipher, "key-bits": strconv.Itoa(v.KeyBits),
		"created": v.Created.UTC().Truncate(time.Second).Format(time.RFC3339),
	}
	if !uuidRE.MatchString(v.ID) {
		return nil, fmt.Errorf("%w: id %q is not a lower-case UUID", ErrVolumeID, v.ID)
	}
	var b bytes.Buffer
	for _, k := range idKeyOrder {
		if !idValueRE.MatchString(vals[k]) {
			return nil, fmt.Errorf("%w: %s value %q", ErrVolumeID, k, vals[k])
		}
		fmt.Fprintf(&b, "%s=%s\n", k, vals[k])
	}
	return b.Bytes(), nil
}

// ParseVolumeID reads the file's bytes: the version line first, known keys
// at most once, volume-id a UUID equal to luks-uuid. Unknown keys are
// ignored so a later inert may add facts.
func ParseVolumeID(b []byte) (VolumeID, error) {
	var v VolumeID
	bad := func(format string, a ...any) (VolumeID, error) {
		return VolumeID{}, fmt.Errorf("%w: "+format, append([]any{ErrVolumeID}, a...)...)
	}
	if len(b) > maxVolumeID {
		return bad("above %d bytes", maxVolumeID)
	}
	known := map[string]bool{}
	for _, k := range idKeyOrder {
		known[k] = true
	}
	seen := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		k, val, ok := strings.Cut(line, "=")
		if !ok || !idValueRE.MatchString(val) {
			return bad("line %d is not key=value", n)
		}
		if n == 1 && (k != "version" || val != volumeIDVersion) {
			return bad("first line is not version=%s", volumeIDVersion)
		}
		if !known[k] {
			continue
		}
		if _, dup := seen[k]; dup {
			return bad("%s given twice", k)
		}
		seen[k] = val
	}
	if err := sc.Err(); err != nil {
		return bad("%v", err)
	}
	if len(seen) == 0 {
		return bad("empty")
	}
	v.ID = seen["volume-id"]
	if !uuidRE.MatchString(v.ID) || seen["luks-uuid"] != v.ID {
		return bad("volume-id %q is not a UUID equal to luks-uuid", v.ID)
	}
	v.Label, v.Partition, v.PartName = seen["label"], seen["partition"], seen["partname"]
	v.KeySource, v.Cipher = seen["key-source"], seen["cipher"]
	if s := seen["key-bits"]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 4096 {
			return bad("key-bits %q", s)
		}
		v.KeyBits = n
	}
	if s := seen["created"]; s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return bad("created %q", s)
		}
		v.Created = t.UTC()
	}
	return v, nil
}

// WriteVolumeID writes the file into the mounted filesystem at dir, durably
// (file and directory synced) and read-only, replacing nothing: a volume
// gets its id once, at provisioning.
func WriteVolumeID(dir string, v VolumeID) error {
	b, err := v.Marshal()
	if err != nil {
		return err
	}
	final := filepath.Join(dir, VolumeIDFile)
	tmp := final + ".tmp"
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("volume-id: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("volume-id: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("volume-id: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("volume-id: sync %s: %w", dir, err)
	}
	return nil
}

// ReadVolumeID reads the file from the filesystem mounted at dir and checks
// it names luksUUID. On ErrVolumeIDMismatch the parsed file is returned too.
func ReadVolumeID(dir, luksUUID string) (VolumeID, error) {
	f, err := os.Open(filepath.Join(dir, VolumeIDFile))
	if err != nil {
		return VolumeID{}, fmt.Errorf("%w: %v", ErrVolumeID, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return VolumeID{}, fmt.Errorf("%w: not a regular file", ErrVolumeID)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxVolumeID+1))
	if err != nil {
		return VolumeID{}, fmt.Errorf("%w: %v", ErrVolumeID, err)
	}
	v, err := ParseVolumeID(b)
	if err != nil {
		return VolumeID{}, err
	}
	if v.ID != strings.ToLower(luksUUID) {
		return v, fmt.Errorf("%w: the file says %s, the LUKS header %s", ErrVolumeIDMismatch, v.ID, luksUUID)
	}
	return v, nil
}
