package harness

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

var (
	// ErrNoKeys means <keysDir>/enrol/{db,KEK,PK}.auth are not all there.
	ErrNoKeys = errors.New("harness: Secure Boot enrolment files missing")
	// ErrEnrol means the enrolment VM did not leave our keys enrolled.
	ErrEnrol = errors.New("harness: Secure Boot enrolment failed")
	// ErrBadAuth means a .auth file is not an EFI_VARIABLE_AUTHENTICATION_2 update.
	ErrBadAuth = errors.New("harness: bad .auth file")
)

// AuthNames are the enrolment files, in the order they are written.
var AuthNames = []string{"db", "KEK", "PK"}

// EnrolReport is what scripts/enroll reports from inside the VM.
type EnrolReport struct {
	Step       string            `json:"step"`
	State      string            `json:"state"`
	Message    string            `json:"message"`
	Enrolled   bool              `json:"enrolled"`
	SetupMode  int               `json:"setup_mode"`
	SecureBoot int               `json:"secure_boot"`
	Vars       map[string]string `json:"vars"`
}

// EnrolledVars returns an OVMF vars file with our PK, KEK and db enrolled
// (Secure Boot on from the next boot), made from Debian's empty vars by
// booting OVMF in setup mode with scripts/enroll as /init. The result is
// cached in cacheDir, keyed by the sha256 of the .auth files and the
// firmware files, so it is built once per key set. It must run inside the
// inert module (it builds scripts/enroll).
func EnrolledVars(ctx context.Context, keysDir, cacheDir string) (string, error) {
	auths := map[string][]byte{}
	key := sha256.New()
	io.WriteString(key, "inert enrolled OVMF vars v1\x00")
	for _, name := range AuthNames {
		b, err := os.ReadFile(filepath.Join(keysDir, "enrol", name+".auth"))
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrNoKeys, err)
		}
		if _, err := AuthPayload(b); err != nil {
			return "", fmt.Errorf("%s.auth: %w", name, err)
		}
		auths[name] = b
		fmt.Fprintf(key, "%s\x00%d\x00", name, len(b))
		key.Write(b)
	}
	for _, fw := range []string{OVMFSecureBootCode, OVMFVars} {
		if err := hashFile(key, fw); err != nil {
			return "", fmt.Errorf("%w: %v", ErrFirmware, err)
		}
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(cacheDir, "ovmf-vars-"+hex.EncodeToString(key.Sum(nil))[:24]+".fd")

	// One enrolment per key set, also across parallel test processes.
	unlock, err := lockFile(ctx, filepath.Join(cacheDir, ".enrol.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}

	work, err := os.MkdirTemp(cacheDir, "enrol-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	vars, report, err := runEnrolVM(ctx, work, auths, Config{
		Name:         "enrol",
		SecureBoot:   true,
		VarsTemplate: OVMFVars,
	})
	if err != nil {
		return "", err
	}
	if report.State != "ok" || !report.Enrolled || report.SetupMode != 0 {
		return "", fmt.Errorf("%w: guest reported state=%s enrolled=%v setup_mode=%d: %s",
			ErrEnrol, report.State, report.Enrolled, report.SetupMode, report.Message)
	}
	for _, name := range AuthNames {
		payload, _ := AuthPayload(auths[name])
		want := sha256.Sum256(payload)
		if report.Vars[name] != hex.EncodeToString(want[:]) {
			return "", fmt.Errorf("%w: %s read back differs from %s.auth", ErrEnrol, name, name)
		}
	}
	tmp := out + ".tmp"
	if err := copyFile(tmp, vars); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	return out, nil
}

// runEnrolVM boots scripts/enroll (with the given .auth files) under OVMF
// using base for everything but the boot itself, and returns the VM's vars
// file and the guest's report once QEMU has exited.
func runEnrolVM(ctx context.Context, work string, auths map[string][]byte, base Config) (string, EnrolReport, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	k, err := DefaultKernel()
	if err != nil {
		return "", EnrolReport{}, err
	}
	initrd, err := enrolInitramfs(ctx, work, k, auths)
	if err != nil {
		return "", EnrolReport{}, err
	}
	base.WorkDir = filepath.Join(work, "vm")
	if base.Kernel == "" {
		base.Kernel = k.Image
	}
	base.Initrd = initrd
	base.Append = "console=ttyS0 quiet panic=-1"
	base.VGA = "none"
	base.Memory = 512
	vm, err := Start(ctx, base)
	if err != nil {
		return "", EnrolReport{}, err
	}
	defer vm.Stop()
	var report EnrolReport
	err = vm.WaitEvent(ctx, func(line []byte) bool {
		return json.Unmarshal(line, &report) == nil && report.Step == "enrol"
	})
	if err != nil {
		return "", report, fmt.Errorf("%w: no report from the enrolment VM: %v: %s", ErrEnrol, err, lastLines(vm.SerialText(), 5))
	}
	if err := vm.Wait(ctx); err != nil {
		return "", report, fmt.Errorf("%w: enrolment VM did not power off cleanly: %v", ErrEnrol, err)
	}
	return vm.VarsPath(), report, nil
}

// enrolInitramfs packs scripts/enroll as /init, efivarfs and the virtio
// console modules, and the .auth files under /enrol.
func enrolInitramfs(ctx context.Context, work string, k Kernel, auths map[string][]byte) (string, error) {
	bin := filepath.Join(work, "enroll")
	if err := BuildStatic(ctx, "./scripts/enroll", bin); err != nil {
		return "", err
	}
	a := NewInitramfs()
	if err := a.AddHostFile("init", bin, 0o755); err != nil {
		return "", err
	}
	if err := a.AddModules(k, "efivarfs", "virtio_pci", "virtio_console"); err != nil {
		return "", err
	}
	for name, b := range auths {
		if err := a.AddFile("enrol/"+name+".auth", b, 0o644); err != nil {
			return "", err
		}
	}
	out := filepath.Join(work, "enrol.cpio")
	return out, a.WriteFile(out)
}

// AuthPayload returns the variable data (the EFI signature lists) inside an
// EFI_VARIABLE_AUTHENTICATION_2 update: it follows a 16-byte EFI_TIME and a
// WIN_CERTIFICATE whose dwLength covers its own header and the signature.
func AuthPayload(auth []byte) ([]byte, error) {
	const timeLen, winCertHeader = 16, 8 + 16 // dwLength, wRevision, wCertificateType, CertType GUID
	if len(auth) < timeLen+winCertHeader {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadAuth, len(auth))
	}
	certLen := uint64(binary.LittleEndian.Uint32(auth[timeLen:]))
	revision := binary.LittleEndian.Uint16(auth[timeLen+4:])
	certType := binary.LittleEndian.Uint16(auth[timeLen+6:])
	if revision != 0x0200 || certType != 0x0EF1 { // WIN_CERT_TYPE_EFI_GUID
		return nil, fmt.Errorf("%w: certificate revision %#x type %#x", ErrBadAuth, revision, certType)
	}
	if certLen < winCertHeader || timeLen+certLen > uint64(len(auth)) {
		return nil, fmt.Errorf("%w: certificate length %d of %d bytes", ErrBadAuth, certLen, len(auth))
	}
	return auth[timeLen+certLen:], nil
}

func hashFile(h io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(h, f)
	return err
}

// lockFile takes an exclusive flock on path, waiting for ctx.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		// Another process is enrolling; its lock goes when it is done.
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
