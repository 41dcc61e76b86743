// Command enroll is the /init of the harness's Secure Boot enrolment VM. It
// runs under OVMF in setup mode, writes our db, KEK and then PK (the .auth
// signed updates packed at /enrol/*.auth) through efivarfs, reads the
// variables back and reports the outcome as one JSON line on the
// org.inert.events port, then powers off. Booted again after enrolment (no
// longer in setup mode) it only reports, which is how a test sees
// SecureBoot=1. It is a test tool: it never runs on an appliance.
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"inert/scripts/guest"
)

const (
	efivars    = "/sys/firmware/efi/efivars"
	globalGUID = "8be4df61-93ca-11d2-aa0d-00e098032b8c"
	dbGUID     = "d719b2cb-3d3a-4596-a3bc-dad00e67656f" // EFI_IMAGE_SECURITY_DATABASE_GUID
	// non-volatile, boot and runtime access, time-based authenticated writes
	authAttrs = 0x00000001 | 0x00000002 | 0x00000004 | 0x00000020
)

// variable is one Secure Boot variable and its efivarfs file name.
type variable struct{ Name, File string }

// enrolOrder is db, then KEK, then PK: writing PK ends setup mode.
var enrolOrder = []variable{
	{"db", "db-" + dbGUID},
	{"KEK", "KEK-" + globalGUID},
	{"PK", "PK-" + globalGUID},
}

// Report is the line sent to the host.
type Report struct {
	Step       string            `json:"step"`
	State      string            `json:"state"`
	Message    string            `json:"message,omitempty"`
	Enrolled   bool              `json:"enrolled"`
	SetupMode  int               `json:"setup_mode"`  // after enrolment
	SecureBoot int               `json:"secure_boot"` // as this boot started
	Vars       map[string]string `json:"vars"`        // sha256 of each variable's data
}

func main() {
	port, err := setup()
	r := Report{Step: "enrol", State: "ok", Vars: map[string]string{}}
	if err == nil {
		err = enrol(&r)
	}
	if err != nil {
		r.State, r.Message = "fail", err.Error()
	}
	line, _ := json.Marshal(r)
	if port != nil {
		_, _ = port.Write(append(line, '\n'))
		_ = port.Close()
	} else {
		fmt.Fprintf(os.Stderr, "enroll: %s\n", line)
	}
	_ = guest.PowerOff()
}

func setup() (*os.File, error) {
	if err := guest.MountAll(guest.BasicMounts); err != nil {
		return nil, err
	}
	modErr := guest.LoadModules()
	port, err := guest.OpenPort("org.inert.events", 30*time.Second)
	if err != nil {
		return nil, errors.Join(modErr, err)
	}
	if modErr != nil {
		return port, modErr
	}
	if err := os.MkdirAll(efivars, 0o755); err != nil {
		return port, err
	}
	if err := unix.Mount("efivarfs", efivars, "efivarfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return port, fmt.Errorf("mount efivarfs: %w", err)
	}
	return port, nil
}

func enrol(r *Report) error {
	setupMode, err := readByteVar("SetupMode-" + globalGUID)
	if err != nil {
		return err
	}
	if r.SecureBoot, err = readByteVar("SecureBoot-" + globalGUID); err != nil {
		return err
	}
	if setupMode == 1 {
		for _, v := range enrolOrder {
			if err := writeAuthVar(v); err != nil {
				return err
			}
		}
		r.Enrolled = true
	}
	if r.SetupMode, err = readByteVar("SetupMode-" + globalGUID); err != nil {
		return err
	}
	for _, v := range enrolOrder {
		data, err := os.ReadFile(filepath.Join(efivars, v.File))
		if err != nil {
			return fmt.Errorf("read back %s: %w", v.Name, err)
		}
		if len(data) < 4 {
			return fmt.Errorf("read back %s: %d bytes", v.Name, len(data))
		}
		sum := sha256.Sum256(data[4:])
		r.Vars[v.Name] = hex.EncodeToString(sum[:])
	}
	return nil
}

// writeAuthVar writes /enrol/<name>.auth to the variable in one write, as
// efivarfs requires: 4 bytes of attributes, then the authenticated update.
func writeAuthVar(v variable) error {
	auth, err := os.ReadFile("/enrol/" + v.Name + ".auth")
	if err != nil {
		return err
	}
	buf := binary.LittleEndian.AppendUint32(nil, authAttrs)
	buf = append(buf, auth...)
	f, err := os.OpenFile(filepath.Join(efivars, v.File), os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", v.Name, err)
	}
	n, err := f.Write(buf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil || n != len(buf) {
		return fmt.Errorf("write %s (%d of %d bytes): %w", v.Name, n, len(buf), err)
	}
	return nil
}

// readByteVar reads a one-byte variable; a missing one reads as 0.
func readByteVar(file string) (int, error) {
	data, err := os.ReadFile(filepath.Join(efivars, file))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(data) != 5 {
		return 0, fmt.Errorf("%s: %d bytes, want 5", file, len(data))
	}
	return int(data[4]), nil
}
