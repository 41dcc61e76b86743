package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// EventsPortName is the virtio-serial port inert reports events on.
const EventsPortName = "org.inert.events"

// DefaultGuestPort is where the appliance's service listens in the guest.
const DefaultGuestPort = 8734

var (
	// ErrConfig means the VM configuration is incomplete or contradictory.
	ErrConfig = errors.New("harness: bad VM config")
	// ErrQEMUStart means QEMU did not come up (bad arguments, missing file).
	ErrQEMUStart = errors.New("harness: qemu did not start")
)

// Config describes one VM. Zero values pick sensible defaults.
type Config struct {
	Name    string // for logs and QEMU's -name
	WorkDir string // required: sockets, logs, the vars copy and TPM state live here

	// Image is a raw disk image attached as a USB stick on qemu-xhci (the
	// boot medium a laptop sees). ImageSnapshot discards guest writes; leave
	// it off when the test inspects the disk bytes afterwards.
	Image         string
	ImageSnapshot bool

	// Kernel, Initrd and Append boot a kernel directly instead of the image.
	Kernel, Initrd, Append string

	Firmware Firmware // FirmwareOVMF (default) or FirmwareSeaBIOS
	// SecureBoot boots the Secure Boot OVMF build with our keys enrolled
	// from KeysDir/enrol/{db,KEK,PK}.auth (see EnrolledVars). VarsCacheDir
	// keeps enrolled vars between runs (default: the user cache dir).
	SecureBoot   bool
	KeysDir      string
	VarsCacheDir string
	// VarsTemplate overrides the OVMF vars the VM starts from (copied).
	VarsTemplate string

	TPM      bool     // start a swtpm for this VM (state in WorkDir/tpm)
	TPMBanks []string // active PCR banks of a fresh TPM (DefaultPCRBanks)

	ExtraDisks []string // raw images attached as virtio-blk disks

	Memory int // MiB, default 1024
	SMP    int // default 1

	// Net enables user networking forwarding 127.0.0.1:HostPort to the
	// guest's GuestPort (default 8734). HostPort 0 picks a free port.
	Net       bool
	HostPort  int
	GuestPort int
	// ExtraNICs are virtio NICs added ahead of the user-net one, so the
	// guest enumerates them first (eth0, ...; the user-net NIC comes last).
	ExtraNICs []NIC

	VGA       string // QEMU -vga model, default "std" (1280x800 EFI framebuffer); "none" for none
	SerialLog string // default WorkDir/serial.log

	AllowReboot bool     // without it a guest reboot ends QEMU (-no-reboot)
	ExtraArgs   []string // appended to QEMU's command line
}

// UserNetID is the QEMU id of the user-net backend (for QMP set_link).
const UserNetID = "net0"

// NIC is one extra virtio NIC: ID names its backend (for QMP set_link) and
// Backend is QEMU's -netdev value without the id, e.g. "hubport,hubid=1"
// for a network with nothing else on it (no DHCP server, no router).
type NIC struct {
	ID      string
	Backend string
}

// VM is a running QEMU.
type VM struct {
	cfg       Config
	proc      *process
	tpm       *TPM
	qmp       *qmpClient
	events    *eventLog
	hostPort  int
	serialLog string
	qemuLog   string
	varsPath  string

	listeners []net.Listener
	tmpSocks  string // private socket directory to remove, if one was needed
	stopOnce  sync.Once
	stopErr   error
	cancel    context.CancelFunc
}

// Start boots a VM. The VM is stopped when ctx ends or Stop is called;
// tests should register Stop with t.Cleanup.
func Start(ctx context.Context, cfg Config) (_ *VM, err error) {
	if cfg.WorkDir == "" {
		return nil, fmt.Errorf("%w: WorkDir is required", ErrConfig)
	}
	if cfg.Image == "" && cfg.Kernel == "" {
		return nil, fmt.Errorf("%w: neither Image nor Kernel given", ErrConfig)
	}
	if cfg.SecureBoot && cfg.Firmware == FirmwareSeaBIOS {
		return nil, fmt.Errorf("%w: Secure Boot needs OVMF", ErrConfig)
	}
	if cfg.Name == "" {
		cfg.Name = "inert"
	}
	if cfg.Memory == 0 {
		cfg.Memory = 1024
	}
	if cfg.SMP == 0 {
		cfg.SMP = 1
	}
	if cfg.GuestPort == 0 {
		cfg.GuestPort = DefaultGuestPort
	}
	if cfg.VGA == "" {
		cfg.VGA = "std"
	}
	workDir, err := filepath.Abs(cfg.WorkDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	vm := &VM{cfg: cfg, serialLog: cfg.SerialLog, qemuLog: filepath.Join(workDir, "qemu.log")}
	if vm.serialLog == "" {
		vm.serialLog = filepath.Join(workDir, "serial.log")
	}
	defer func() {
		if err != nil {
			_ = vm.Stop()
		}
	}()

	if cfg.SecureBoot && cfg.VarsTemplate == "" {
		cacheDir := cfg.VarsCacheDir
		if cacheDir == "" {
			cacheDir = defaultCacheDir()
		}
		if cfg.VarsTemplate, err = EnrolledVars(ctx, cfg.KeysDir, cacheDir); err != nil {
			return nil, err
		}
	}
	vm.varsPath = filepath.Join(workDir, "ovmf-vars.fd")
	machine, fwArgs, err := firmwareArgs(cfg.Firmware, cfg.SecureBoot, cfg.VarsTemplate, vm.varsPath)
	if err != nil {
		return nil, err
	}

	args := []string{
		"-name", cfg.Name,
		"-nodefaults", "-no-user-config",
		"-machine", machine,
		"-accel", "tcg",
		// A CPU with RDRAND, as every laptop has: with QEMU's default model
		// the guest's RNG seeds slowly under TCG and getrandom blocks
		// (DHCP transaction ids waited for seconds).
		"-cpu", "max",
		"-m", strconv.Itoa(cfg.Memory),
		"-smp", strconv.Itoa(cfg.SMP),
		"-display", "none",
		"-vga", cfg.VGA,
		"-serial", "file:" + vm.serialLog,
	}
	args = append(args, fwArgs...)
	if !cfg.AllowReboot {
		args = append(args, "-no-reboot")
	}

	// QEMU connects to sockets we already listen on: no startup race.
	sockDir, err := socketDir(workDir)
	if err != nil {
		return nil, err
	}
	if sockDir != workDir {
		vm.tmpSocks = sockDir
	}
	qmpLn, err := vm.listen(filepath.Join(sockDir, "qmp.sock"))
	if err != nil {
		return nil, err
	}
	evLn, err := vm.listen(filepath.Join(sockDir, "events.sock"))
	if err != nil {
		return nil, err
	}
	args = append(args,
		"-chardev", "socket,id=qmp,path="+qmpLn.Addr().String(),
		"-mon", "chardev=qmp,mode=control",
		"-device", "virtio-serial-pci,id=vser",
		"-chardev", "socket,id=ev,path="+evLn.Addr().String(),
		"-device", "virtserialport,bus=vser.0,chardev=ev,name="+EventsPortName,
	)

	if cfg.Kernel != "" {
		args = append(args, "-kernel", cfg.Kernel)
		if cfg.Initrd != "" {
			args = append(args, "-initrd", cfg.Initrd)
		}
		if cfg.Append != "" {
			args = append(args, "-append", cfg.Append)
		}
	}
	if cfg.Image != "" {
		drive := "if=none,id=stick,format=raw,file=" + cfg.Image
		if cfg.ImageSnapshot {
			drive += ",snapshot=on"
		}
		args = append(args,
			"-device", "qemu-xhci,id=xhci",
			"-drive", drive,
			"-device", "usb-storage,bus=xhci.0,drive=stick,removable=on,bootindex=1")
	}
	for i, disk := range cfg.ExtraDisks {
		id := fmt.Sprintf("disk%d", i)
		args = append(args,
			"-drive", "if=none,format=raw,id="+id+",file="+disk,
			"-device", "virtio-blk-pci,drive="+id+",serial=inert-"+id)
	}
	for _, nic := range cfg.ExtraNICs {
		if nic.ID == "" || nic.ID == UserNetID || nic.Backend == "" || strings.Contains(nic.ID, ",") {
			return nil, fmt.Errorf("%w: extra NIC %+v needs an id and a backend", ErrConfig, nic)
		}
		args = append(args,
			"-netdev", nic.Backend+",id="+nic.ID,
			"-device", "virtio-net-pci,netdev="+nic.ID+",romfile=")
	}
	if cfg.Net {
		vm.hostPort = cfg.HostPort
		if vm.hostPort == 0 {
			if vm.hostPort, err = freePort(); err != nil {
				return nil, err
			}
		}
		args = append(args,
			"-netdev", fmt.Sprintf("user,id="+UserNetID+",hostfwd=tcp:127.0.0.1:%d-:%d", vm.hostPort, cfg.GuestPort),
			"-device", "virtio-net-pci,netdev="+UserNetID+",romfile=")
	}
	if cfg.TPM {
		if vm.tpm, err = StartTPM(ctx, filepath.Join(workDir, "tpm"), cfg.TPMBanks...); err != nil {
			return nil, err
		}
		args = append(args, vm.tpm.QEMUArgs()...)
	}
	args = append(args, cfg.ExtraArgs...)

	logFile, err := os.Create(vm.qemuLog)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command("qemu-system-x86_64", args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := os.WriteFile(filepath.Join(workDir, "qemu.cmdline"), []byte(shellQuote(cmd.Args)+"\n"), 0o644); err != nil {
		return nil, err
	}
	if vm.proc, err = startProcess(cmd); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrQEMUStart, err)
	}

	qmpConn, err := vm.accept(ctx, qmpLn)
	if err != nil {
		return nil, err
	}
	evConn, err := vm.accept(ctx, evLn)
	if err != nil {
		return nil, err
	}
	sink, err := os.Create(filepath.Join(workDir, "events.jsonl"))
	if err != nil {
		return nil, err
	}
	vm.events = newEventLog(sink)
	go func() {
		vm.events.consume(evConn)
		sink.Close()
	}()
	if vm.qmp, err = newQMPClient(qmpConn); err != nil {
		return nil, fmt.Errorf("%w: %v%s", ErrQEMUStart, err, vm.logTail())
	}

	watchCtx, cancel := context.WithCancel(context.Background())
	vm.cancel = cancel
	go func() {
		select {
		case <-ctx.Done():
			_ = vm.Stop()
		case <-vm.proc.done:
			// QEMU ended by itself (poweroff): its sockets are closed, but
			// the TPM is ours to stop.
			_ = vm.tpm.Stop()
		case <-watchCtx.Done():
		}
	}()
	return vm, nil
}

func (vm *VM) listen(path string) (net.Listener, error) {
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("%w: listen %s: %v", ErrQEMUStart, path, err)
	}
	vm.listeners = append(vm.listeners, ln)
	return ln, nil
}

// accept waits for QEMU to connect to ln, or for QEMU to exit.
func (vm *VM) accept(ctx context.Context, ln net.Listener) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("%w: accept: %v", ErrQEMUStart, r.err)
		}
		return r.c, nil
	case <-vm.proc.done:
		return nil, fmt.Errorf("%w: qemu exited: %v%s", ErrQEMUStart, vm.proc.err, vm.logTail())
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("%w: qemu did not connect to %s%s", ErrQEMUStart, ln.Addr(), vm.logTail())
	}
}

func (vm *VM) logTail() string {
	b, _ := os.ReadFile(vm.qemuLog)
	if len(b) == 0 {
		return ""
	}
	return ": " + lastLines(string(b), 5)
}

// Pid is QEMU's process id.
func (vm *VM) Pid() int { return vm.proc.Pid() }

// TPM is the VM's swtpm, or nil.
func (vm *VM) TPM() *TPM { return vm.tpm }

// HostPort is the host side of the forwarded service port (0 without Net).
func (vm *VM) HostPort() int { return vm.hostPort }

// VarsPath is the VM's own copy of the OVMF variables.
func (vm *VM) VarsPath() string { return vm.varsPath }

// SerialLogPath is the file the guest's serial console goes to.
func (vm *VM) SerialLogPath() string { return vm.serialLog }

// SerialText returns the serial console output so far.
func (vm *VM) SerialText() string {
	b, _ := os.ReadFile(vm.serialLog)
	return string(b)
}

// Events returns every line from org.inert.events, from the first, as they
// come. The channel closes when the port closes or ctx ends.
func (vm *VM) Events(ctx context.Context) <-chan []byte { return vm.events.stream(ctx) }

// WaitEvent scans the event lines, from the first, until match returns true.
// It returns ErrVMExited if the port closes first.
func (vm *VM) WaitEvent(ctx context.Context, match func(line []byte) bool) error {
	return vm.events.wait(ctx, match)
}

// LastStatus is the last "status" field seen on the events port.
func (vm *VM) LastStatus() (string, bool) { return vm.events.lastWithField("status") }

// QMP runs one QMP command and returns its result.
func (vm *VM) QMP(cmd string, args any) (json.RawMessage, error) {
	return vm.qmp.command(cmd, args, 60*time.Second)
}

// QMPEvents returns QEMU's asynchronous QMP events seen so far (SHUTDOWN, ...).
func (vm *VM) QMPEvents() []json.RawMessage { return vm.qmp.asyncEvents() }

// Done is closed when QEMU has exited.
func (vm *VM) Done() <-chan struct{} { return vm.proc.done }

// Wait waits for QEMU to exit and returns its exit status.
func (vm *VM) Wait(ctx context.Context) error {
	select {
	case <-vm.proc.done:
		return vm.proc.err
	case <-ctx.Done():
		return fmt.Errorf("harness: waiting for qemu: %w", ctx.Err())
	}
}

// Stop asks QEMU to quit over QMP, kills it by pid if it has not exited
// within a bound, then stops the TPM. It is safe to call more than once and
// returns the first call's result.
func (vm *VM) Stop() error {
	vm.stopOnce.Do(func() {
		if vm.cancel != nil {
			vm.cancel()
		}
		if vm.proc != nil && !vm.proc.exited() {
			if vm.qmp != nil {
				_, _ = vm.qmp.command("quit", nil, 5*time.Second)
			}
			_ = vm.proc.stop(nil, 10*time.Second)
		}
		if vm.qmp != nil {
			_ = vm.qmp.close()
		}
		for _, ln := range vm.listeners {
			_ = ln.Close()
		}
		if vm.tmpSocks != "" {
			_ = os.RemoveAll(vm.tmpSocks)
		}
		vm.stopErr = vm.tpm.Stop()
	})
	return vm.stopErr
}

// socketDir returns a directory for unix sockets: workDir if its paths fit
// in sun_path (108 bytes), else a short private directory under /tmp.
func socketDir(workDir string) (string, error) {
	if len(workDir)+len("/events.sock") < 100 {
		return workDir, nil
	}
	dir, err := os.MkdirTemp("", "inert-vm-")
	if err != nil {
		return "", err
	}
	return dir, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("harness: free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func defaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "inert")
	}
	return filepath.Join(os.TempDir(), "inert-cache")
}

func shellQuote(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"$\\;&|()<>*?") {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		} else {
			out[i] = a
		}
	}
	return strings.Join(out, " ")
}

// WaitSerial waits until the serial console output contains text (for what a
// person would read there, such as the firmware refusing an image), QEMU
// exits, or ctx ends.
func (vm *VM) WaitSerial(ctx context.Context, text string) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if strings.Contains(vm.SerialText(), text) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("harness: awaiting %q on the serial console: %w", text, ctx.Err())
		case <-vm.proc.done:
			if strings.Contains(vm.SerialText(), text) {
				return nil
			}
			return fmt.Errorf("%w: %q never appeared on the serial console", ErrVMExited, text)
		case <-tick.C:
		}
	}
}
