package appliance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"inert/boot"
	"inert/boot/kmod"
	"inert/boot/measure"
	"inert/netup"
	"inert/storage"
)

// Worker carries one boot through the plan. Its fields are the facts steps
// hand to later steps; nothing secret is kept here longer than needed.
type Worker struct {
	M       *Manifest
	Env     boot.Env
	Cmdline boot.Cmdline
	Mode    boot.Mode
	// Root is the filesystem root the run directory and config live under
	// ("/" on the appliance).
	Root string
	Emit func(Event)

	modules  *kmod.Tree
	stopPlug context.CancelFunc
	plugDone chan struct{}
	esp      *boot.ESP
	files    boot.OperatorFiles
	tee      boot.TEEInfo
	detached string
	measurer *measure.Measurer
	// inputMeasured is set once PCR 12 holds the operator input.
	inputMeasured bool
	mu            sync.Mutex
	faultStep     string
	faultKind     string
	// background holds duties that outlive the plan (lease renewal); the
	// worker process stays alive while they run.
	background sync.WaitGroup
	bgCtx      context.Context

	// disks is the snapshot taken before the USB lockdown; zone storage
	// refuses disks missing from it. zones is nil in production.
	disks    storage.DiskSet
	disksErr error
	zones    zoneProvisioner
}

// statusLine builds a status from parts; the class decides the action.
func (w *Worker) path(p string) string { return filepath.Join(w.Root, p) }

// Steps is the boot plan, in the order of CONTRACTS §1.
func (w *Worker) Steps() Plan {
	return Plan{
		{Name: "setup", Timeout: 10 * time.Second, Run: w.setup},
		{Name: "modules", Timeout: 60 * time.Second, Run: w.loadModules},
		{Name: "tee", Timeout: 20 * time.Second, Run: w.teeGate},
		{Name: "measure", Timeout: 30 * time.Second, Run: w.startMeasuring},
		{Name: "esp", Timeout: 60 * time.Second, Run: w.readESP, Fallback: w.noESP},
		{Name: "detach", Timeout: 30 * time.Second, Run: w.detach},
		{Name: "usb-lockdown", Timeout: 10 * time.Second, Run: w.lockdown},
		{Name: "input-locked", Timeout: 30 * time.Second, Run: w.lockInput},
		{Name: "network", Timeout: 10 * time.Second, Run: w.network},
		{Name: "storage", Timeout: 120 * time.Second, Run: w.storage},
		{Name: "lock", Timeout: 30 * time.Second, Run: w.lockPhase},
		{Name: "service", Timeout: 10 * time.Second, Run: w.service},
	}
}

// Run executes the plan with the test-only fault hook applied, and returns
// its outcome. The fault hook (<ns>.fault=panic@STEP, hang@STEP or
// signals@STEP on the signed command line) can only stop a boot or poke PID
// 1; it exists so the end-to-end suite can prove that a crashing or hanging
// worker halts with a status rather than a kernel panic, and that PID 1
// ignores stray signals.
func (w *Worker) Run(ctx context.Context) Outcome {
	plan := w.Steps()
	for i := range plan {
		run := plan[i].Run
		name := plan[i].Name
		plan[i].Run = func(ctx context.Context) error {
			w.injectFault(name)
			return run(ctx)
		}
	}
	return plan.Run(ctx, w.Emit)
}

func (w *Worker) injectFault(step string) {
	if w.faultStep != step {
		return
	}
	switch w.faultKind {
	case "panic":
		panic("injected fault in step " + step)
	case "hang":
		select {} // ignores its context on purpose: PID 1's deadline must catch it
	case "signals":
		// PID 1 must shrug these off (the kernel panics if PID 1 exits).
		for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGHUP, unix.SIGINT} {
			_ = unix.Kill(1, sig)
		}
		w.info(step, "sent SIGTERM, SIGHUP and SIGINT to PID 1")
	}
}

func (w *Worker) info(step, msg string) {
	w.Emit(Event{Step: step, State: StateInfo, Message: msg})
}

func (w *Worker) status(step, word, status string) {
	w.Emit(Event{Step: step, State: StateInfo, Word: word, Status: status})
}

func (w *Worker) ns(key string) string { return w.M.CmdlineNamespace + "." + key }

// setup reads the command line, sets the console log level and makes
// /tmp/config.json "{}" before anything from outside is read.
func (w *Worker) setup(ctx context.Context) error {
	raw, err := os.ReadFile(filepath.Join(w.Env.ProcRoot, "cmdline"))
	if err != nil {
		return Internal("Boot stopped: the kernel command line is unreadable.", err)
	}
	w.Cmdline = boot.ParseCmdline(string(raw))
	w.Mode = w.Cmdline.Mode(w.M.CmdlineNamespace)
	if w.Mode == boot.ModeSBProvision {
		return Security("Boot stopped: this image is not the provisioner.", errors.New("sb-provision mode requested"))
	}
	if v, ok := w.Cmdline.Value(w.ns("fault")); ok {
		w.faultKind, w.faultStep, _ = strings.Cut(v, "@")
	}
	w.Emit(Event{Step: "setup", State: StateInfo, Mode: string(w.Mode), Message: "mode " + string(w.Mode)})
	ms := w.M.Modes[string(w.Mode)]
	level := strconv.Itoa(ms.ConsoleLogLevel)
	if err := os.WriteFile(filepath.Join(w.Env.ProcRoot, "sys/kernel/printk"), []byte(level), 0); err != nil {
		w.info("setup", "could not set the console log level: "+err.Error())
	}
	if err := os.MkdirAll(w.path(w.M.RunDir), 0o755); err != nil {
		return Internal("", err)
	}
	if err := WriteFile0600(w.path(w.M.ESP.Config.Out), []byte("{}")); err != nil {
		return Internal("Boot stopped: the config file could not be prepared.", err)
	}
	if w.Root == "/" {
		if err := netup.LoopbackUp(); err != nil {
			w.info("setup", "loopback: "+err.Error())
		}
	}
	return nil
}

// loadModules loads the manifest's modules, then keeps loading modules for
// devices as they appear (a tiny udev) until the USB lockdown.
func (w *Worker) loadModules(ctx context.Context) error {
	w.modules = &kmod.Tree{Root: w.Root}
	loaded, err := w.modules.Load(ctx, w.M.Modules)
	if err != nil {
		// A listed module the kernel refuses (sev-guest off SNP) is not a
		// boot failure; the capability that needs it reports its absence.
		w.info("modules", "some modules did not load: "+err.Error())
	}
	if w.M.Coldplug {
		more, err := w.modules.Coldplug(ctx)
		if err != nil {
			w.info("modules", "coldplug: "+err.Error())
		}
		loaded = append(loaded, more...)
		w.startHotplug()
	}
	w.info("modules", fmt.Sprintf("%d modules loaded", len(loaded)))
	for _, m := range MountsAt("modules") {
		if m.Needs != "" {
			if _, err := os.Stat(w.path(m.Needs)); err != nil {
				continue
			}
		}
		if err := os.MkdirAll(w.path(m.Target), 0o755); err == nil {
			if err := w.Env.Mounter.Mount(m.Source, w.path(m.Target), m.FSType, m.Flags, m.Data); err != nil {
				w.info("modules", fmt.Sprintf("mount %s: %v", m.FSType, err))
			}
		}
	}
	return nil
}

// startHotplug loads drivers for devices that appear after the module step
// (USB sticks enumerate seconds after xhci loads).
func (w *Worker) startHotplug() {
	src, err := boot.OpenNetlinkUevents()
	if err != nil {
		w.info("modules", "no uevents; devices that appear late get no driver: "+err.Error())
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.stopPlug = cancel
	w.plugDone = make(chan struct{})
	go func() {
		defer close(w.plugDone)
		defer src.Close()
		for ctx.Err() == nil {
			err := src.WaitFor(ctx, "device with a modalias", func(u boot.Uevent) bool {
				return u.Action == "add" && u.Vars["MODALIAS"] != ""
			})
			if err != nil && ctx.Err() != nil {
				return
			}
			if more, _ := w.modules.Coldplug(ctx); len(more) > 0 {
				w.info("modules", "hotplug loaded "+strings.Join(more, " "))
			}
		}
	}()
}

func (w *Worker) stopHotplug() {
	if w.stopPlug != nil {
		w.stopPlug()
		<-w.plugDone
		w.stopPlug = nil
	}
}

// teeGate detects the TEE and enforces the manifest's requirement and the
// memory-encryption gate, fail-closed.
func (w *Worker) teeGate(ctx context.Context) error {
	kmsg := readKernelLog(w.Env.DevRoot)
	w.tee = boot.DetectTEE(w.Env, w.Cmdline, kmsg)
	w.writeTEE()
	verdict, err := boot.TMEGate(w.tee, w.Cmdline.Has("LAPEE_NO_TME=1"))
	if err != nil {
		return Security("Boot stopped: memory encryption is not enabled by the BIOS.", err)
	}
	w.info("tee", fmt.Sprintf("memory encryption: %s (%s)", verdict.Outcome, verdict.Reason))
	if missing := requirementMissing(w.M.TEE.Require, w.tee); missing != "" {
		return Security(fmt.Sprintf("Boot stopped: this appliance requires %s; none was found.", missing),
			fmt.Errorf("tee requirement %q not met", w.M.TEE.Require))
	}
	return nil
}

// requirementMissing names what is missing for require, or "".
func requirementMissing(require string, t boot.TEEInfo) string {
	switch require {
	case "snp":
		if !t.SNP {
			return "AMD SEV-SNP"
		}
	case "tdx":
		if !t.TDX {
			return "Intel TDX"
		}
	case "tpm":
		if !t.TPM {
			return "a TPM 2.0"
		}
	case "any-tee":
		if !t.SNP && !t.TDX {
			return "a TEE (SEV-SNP or TDX)"
		}
	}
	return ""
}

// readESP finds the boot ESP, records the UKI, and reads the operator files
// once; the accepted config is written to tmpfs.
func (w *Worker) readESP(ctx context.Context) error {
	src, err := boot.OpenNetlinkUevents()
	if err == nil {
		defer src.Close()
		w.Env.Uevents = src
	}
	w.status("esp", "", "Looking for the boot USB.")
	esp, err := boot.FindESP(ctx, w.Env, w.M.ESP, func(s string) { w.info("esp", s) })
	switch {
	case errors.Is(err, boot.ErrAmbiguousESP):
		return Security("Boot stopped: more than one boot USB carries the inert marker.", err)
	case errors.Is(err, boot.ErrNoESP):
		return Environment("Boot USB was not found; continuing without Wi-Fi settings.", err)
	case err != nil:
		return Environment("Boot USB could not be read; continuing without Wi-Fi settings.", err)
	}
	w.esp = esp
	w.Emit(Event{Step: "esp", State: StateInfo, Message: "boot ESP " + esp.Device,
		Data: map[string]string{"device": esp.Device, "partuuid": esp.PartUUID,
			"firmware_partuuid": esp.FirmwarePartUUID, "transport": esp.Transport}})
	if _, err := boot.RecordUKI(w.path(w.M.RunDir), esp, w.M.ESP); err != nil {
		w.info("esp", "the UKI could not be recorded: "+err.Error())
	}
	w.files = boot.ReadOperatorFiles(esp.MountPoint, w.M.ESP, w.wifiAllowed())
	// Measure the bytes before they are used: the same copy is validated
	// (above), measured (here) and written (acceptConfig).
	if err := w.measureInput(); err != nil {
		return err
	}
	w.inputMeasured = true
	return w.acceptConfig()
}

// acceptConfig writes the accepted config bytes (the same bytes that were
// validated) and the config-state record; a rejected config leaves "{}".
func (w *Worker) acceptConfig() error {
	state := "present=no\n"
	switch {
	case w.files.ConfigErr != nil:
		reason := w.files.ConfigErr.Error()
		state = "present=no\nreason=" + sanitize(reason) + "\n"
		w.status("esp", "", "config.json was rejected ("+sanitize(reason)+"); using {}.")
	case w.files.Config != nil:
		if err := WriteFile0600(w.path(w.M.ESP.Config.Out), w.files.Config); err != nil {
			return Internal("Boot stopped: the operator config could not be written.", err)
		}
		sum := sha256.Sum256(w.files.Config)
		state = "present=yes\nsha256=" + hex.EncodeToString(sum[:]) + "\npath=" + w.M.ESP.Config.Out + "\n"
		w.info("esp", "config.json accepted")
	}
	switch {
	case w.files.WifiErr != nil:
		w.status("esp", "", "wifi.conf was rejected ("+sanitize(w.files.WifiErr.Error())+"); Wi-Fi stays off.")
	case w.files.Wifi != nil:
		w.info("esp", "wifi credentials present")
	}
	return writePublic(w.path(filepath.Join(w.M.RunDir, "config-state")), []byte(state))
}

func (w *Worker) noESP(err error) {
	_ = writePublic(w.path(filepath.Join(w.M.RunDir, "config-state")), []byte("present=no\nreason=no boot USB\n"))
}

// detach unmounts the ESP and takes the boot medium away for good.
func (w *Worker) detach(ctx context.Context) error {
	if w.esp == nil {
		return Skip("no boot USB")
	}
	if err := boot.UnmountESP(ctx, w.Env, w.esp, 5*time.Second); err != nil {
		return Security("Boot stopped: the boot USB could not be unmounted.", err)
	}
	res, err := boot.Detach(ctx, w.Env, w.esp)
	if err != nil {
		return Security("Boot stopped: the boot USB could not be detached.", err)
	}
	w.detached = res.Outcome
	w.Emit(Event{Step: "detach", State: StateInfo, Message: "boot medium " + res.Outcome,
		Data: map[string]string{"outcome": res.Outcome, "disk": res.Disk}})
	return nil
}

// lockdown de-authorises HID devices and new USB devices (prod only), and
// stops loading drivers for devices that appear from now on.
func (w *Worker) lockdown(ctx context.Context) error {
	w.stopHotplug()
	w.snapshotDisks()
	if !w.M.Modes[string(w.Mode)].USBLockdown {
		return Skip("not in " + string(w.Mode) + " mode")
	}
	rep, err := boot.LockdownUSB(w.Env)
	if err != nil {
		return Security("Boot stopped: USB input devices could not be locked out.", err)
	}
	w.info("usb-lockdown", fmt.Sprintf("%+v", rep))
	return nil
}

// service composes the launch spec and hands it to PID 1.
func (w *Worker) service(ctx context.Context) error {
	cfg := w.files.Config
	if cfg == nil {
		cfg = []byte("{}")
	}
	spec, err := w.M.Launch(ServiceInputs{
		Mode: string(w.Mode), ConfigPath: w.M.ESP.Config.Out, OperatorConfig: cfg,
		ReadFile:  func(p string) ([]byte, error) { return os.ReadFile(w.path(p)) },
		WriteFile: func(p string, b []byte) error { return WriteFile0600(w.path(p), b) },
	})
	if err != nil {
		return Security("Boot stopped: the operator config's hooks cannot be merged.", err)
	}
	w.Emit(Event{Step: "service", State: StateInfo, Word: w.M.Word("starting"), Service: spec})
	return nil
}

// writePublic writes a run-dir file the service may read (0644).
func writePublic(path string, b []byte) error {
	if err := WriteFile0600(path, b); err != nil {
		return err
	}
	return os.Chmod(path, 0o644)
}

// sanitize keeps a status fragment on one printable line.
func sanitize(s string) string {
	s = OneLine(s)
	if len(s) <= 160 {
		return s
	}
	cut := 160
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut-- // never split a character
	}
	return s[:cut] + "..."
}

// readKernelLog reads what is in the kernel ring buffer now, without
// blocking, for the TME gate's dmesg lines. It uses raw syscalls: os.File
// would park a non-blocking character device in the poller and wait.
func readKernelLog(devRoot string) string {
	fd, err := unix.Open(filepath.Join(devRoot, "kmsg"), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	defer unix.Close(fd)
	var b strings.Builder
	buf := make([]byte, 8192)
	for b.Len() < 1<<20 {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EPIPE) {
			continue // a record was overwritten while we read; go on
		}
		if err != nil || n <= 0 {
			break
		}
		// kmsg records are "prio,seq,ts,flags;message\n" plus continuation lines
		if _, msg, ok := strings.Cut(string(buf[:n]), ";"); ok {
			b.WriteString(msg)
		}
	}
	return b.String()
}

// NewWorker prepares a worker for one boot.
func NewWorker(m *Manifest, env boot.Env, root string, emit func(Event)) *Worker {
	return &Worker{M: m, Env: env, Root: root, Emit: emit, bgCtx: context.Background()}
}

// writeTEE writes tee.json: what was found. The service and evidence read it.
func (w *Worker) writeTEE() {
	if b, err := json.MarshalIndent(w.tee, "", "  "); err == nil {
		_ = writePublic(w.path(filepath.Join(w.M.RunDir, "tee.json")), append(b, '\n'))
	}
}
