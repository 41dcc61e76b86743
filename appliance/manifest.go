package appliance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"

	"inert/boot"
)

// ManifestPath is where the manifest lives inside the initramfs.
const ManifestPath = "/etc/inert/appliance.json"

// Manifest is the appliance: everything an image boots for. It is decoded
// strictly (unknown fields are errors) when the image is built, so a boot never
// meets a manifest it does not understand.
type Manifest struct {
	// Name is the profile name (demo, hyperbeam).
	Name string `json:"name"`
	// CmdlineNamespace is the prefix of the kernel command line keys this
	// appliance reads: "<ns>.mode", "<ns>.debug", "<ns>.wifi".
	CmdlineNamespace string `json:"cmdline_namespace"`
	// RunDir holds status, primary-net, the UKI record and evidence.
	RunDir string       `json:"run_dir"`
	Status StatusWords  `json:"status"`
	ESP    boot.ESPSpec `json:"esp"`
	// Modules are loaded in modules.dep order before anything else; Coldplug
	// additionally loads the included modules matching present devices.
	Modules  []string `json:"modules"`
	Coldplug bool     `json:"coldplug"`
	// Firmware files (relative to /lib/firmware) and host binaries copied into
	// the initramfs with their shared-library closure.
	Firmware []string `json:"firmware,omitempty"`
	Binaries []string `json:"binaries,omitempty"`
	// Payload are the service's files, copied from the build host.
	Payload []PayloadFile `json:"payload"`
	TEE     TEESpec       `json:"tee"`
	Service ServiceSpec   `json:"service"`
	// Modes says what each step does in prod and in debug.
	Modes map[string]ModeSpec `json:"modes"`
	// Zones are the encrypted zone volumes opened or provisioned before the
	// service starts (CONTRACTS §3); see ZoneSpec.
	Zones []ZoneSpec `json:"zones,omitempty"`
}

// StatusWords are the words and lines a person reads.
type StatusWords struct {
	// Words maps a state (booting, wifi, dhcp, starting, ready, stopped) to
	// the word the splash shows.
	Words map[string]string `json:"words"`
	// ServiceExited is the status after the service exits; %d is its status.
	ServiceExited string `json:"service_exited"`
}

// PayloadFile is copied from Src (a build-host path, relative to the repository
// root; $VARS are expanded) to Dst inside the initramfs. A directory is copied
// whole.
type PayloadFile struct {
	Src  string `json:"src"`
	Dst  string `json:"dst"`
	Mode uint32 `json:"mode,omitempty"`
}

// TEESpec is what the appliance requires to boot: snp, tdx, tpm, any-tee, none.
type TEESpec struct {
	Require string `json:"require"`
}

// ServiceSpec is the one service: what PID 1 starts when the plan succeeds.
type ServiceSpec struct {
	// DisplayName is used in status lines ("HyperBEAM exited with status 1").
	DisplayName string            `json:"display_name"`
	Argv        []string          `json:"argv"`
	Env         map[string]string `json:"env,omitempty"`
	Dir         string            `json:"dir"`
	// Stdio is "null" or "console"; the mode may override it.
	Stdio string `json:"stdio,omitempty"`
	// ConfigEnv names the variable that receives the operator config path list.
	ConfigEnv *ConfigEnv  `json:"config_env,omitempty"`
	Health    HealthProbe `json:"health"`
	// OnExit is the exit policy: park (halt with status), reboot or poweroff.
	OnExit string `json:"on_exit"`
}

// ConfigEnv composes a path-list variable like HB_CONFIG: the operator config
// first, the measured base config last (rightmost wins), and, when the
// operator config has "on" hooks, a merged hooks file appended.
type ConfigEnv struct {
	Var          string `json:"var"`
	Base         string `json:"base,omitempty"`
	MergeOnHooks bool   `json:"merge_on_hooks,omitempty"`
	// MergedPath is where the merged hooks file is written (run dir).
	MergedPath string `json:"merged_path,omitempty"`
}

// HealthProbe is the HTTP GET that says the service is ready.
type HealthProbe struct {
	Port int    `json:"port"`
	Path string `json:"path"`
}

// ModeSpec is the behaviour of one boot mode.
type ModeSpec struct {
	// ConsoleLogLevel is written to /proc/sys/kernel/printk.
	ConsoleLogLevel int `json:"console_log_level"`
	// ServiceStdio overrides ServiceSpec.Stdio ("null" or "console").
	ServiceStdio string `json:"service_stdio"`
	// USBLockdown runs the HID lockdown after the ESP read.
	USBLockdown bool `json:"usb_lockdown"`
	// SerialMirror mirrors human status lines to the console.
	SerialMirror bool `json:"serial_mirror"`
}

var (
	// ErrManifest marks every manifest validation failure.
	ErrManifest = errors.New("invalid appliance manifest")
	nameRE      = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	moduleRE    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// ParseManifest decodes b strictly and validates it.
func ParseManifest(b []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrManifest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the manifest object", ErrManifest)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks what the type system cannot.
func (m *Manifest) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrManifest}, a...)...)
	}
	if !nameRE.MatchString(m.Name) {
		return bad("name %q must match %s", m.Name, nameRE)
	}
	if !nameRE.MatchString(m.CmdlineNamespace) {
		return bad("cmdline_namespace %q must match %s", m.CmdlineNamespace, nameRE)
	}
	if !absClean(m.RunDir) || !strings.HasPrefix(m.RunDir, "/run/") {
		return bad("run_dir %q must be a clean absolute path under /run", m.RunDir)
	}
	for _, w := range []string{"booting", "wifi", "dhcp", "starting", "ready", "stopped"} {
		if m.Status.Words[w] == "" {
			return bad("status.words.%s is missing", w)
		}
	}
	if strings.Count(m.Status.ServiceExited, "%d") != 1 || strings.Count(m.Status.ServiceExited, "%") != 1 {
		return bad("status.service_exited must contain exactly one %%d and no other verb")
	}
	e := m.ESP
	if !absClean(e.Loader) || !absClean(e.MarkerFile) || e.MarkerLine == "" {
		return bad("esp: loader, marker_file and marker_line are required")
	}
	if e.Rounds < 1 || e.Rounds > 60 || e.RoundSeconds < 1 || e.RoundSeconds > 10 {
		return bad("esp: rounds must be 1..60 and round_seconds 1..10")
	}
	if len(e.Config.Paths) == 0 || e.Config.MinBytes < 2 || e.Config.MaxBytes < e.Config.MinBytes || e.Config.MaxBytes > 1<<20 {
		return bad("esp.config: paths, and 2 <= min_bytes <= max_bytes <= 1 MiB, are required")
	}
	if !absClean(e.Config.Out) {
		return bad("esp.config.out %q must be a clean absolute path", e.Config.Out)
	}
	for _, p := range append(append([]string{}, e.Config.Paths...), e.Wifi.Paths...) {
		if !absClean(p) {
			return bad("esp file path %q must be a clean absolute path", p)
		}
	}
	for _, mod := range m.Modules {
		if !moduleRE.MatchString(mod) {
			return bad("module name %q", mod)
		}
	}
	for _, p := range m.Payload {
		if p.Src == "" || !absClean(p.Dst) {
			return bad("payload entry %+v needs src and a clean absolute dst", p)
		}
	}
	switch m.TEE.Require {
	case "snp", "tdx", "tpm", "any-tee", "none":
	default:
		return bad("tee.require %q must be one of snp, tdx, tpm, any-tee, none", m.TEE.Require)
	}
	s := m.Service
	if len(s.Argv) == 0 || !absClean(s.Argv[0]) {
		return bad("service.argv[0] must be an absolute path")
	}
	if !absClean(s.Dir) {
		return bad("service.dir %q must be a clean absolute path", s.Dir)
	}
	if s.DisplayName == "" {
		return bad("service.display_name is required")
	}
	if s.Health.Port < 1 || s.Health.Port > 65535 || !strings.HasPrefix(s.Health.Path, "/") {
		return bad("service.health needs a port and an absolute path")
	}
	switch s.OnExit {
	case "park", "reboot", "poweroff":
	default:
		return bad("service.on_exit %q must be park, reboot or poweroff", s.OnExit)
	}
	if !validStdio(s.Stdio, true) {
		return bad("service.stdio %q must be null or console", s.Stdio)
	}
	if c := s.ConfigEnv; c != nil {
		if c.Var == "" || (c.Base != "" && !absClean(c.Base)) || (c.MergeOnHooks && !absClean(c.MergedPath)) {
			return bad("service.config_env needs var, an absolute base, and merged_path when merge_on_hooks")
		}
	}
	for _, mode := range []string{"prod", "debug"} {
		ms, ok := m.Modes[mode]
		if !ok {
			return bad("modes.%s is missing", mode)
		}
		if ms.ConsoleLogLevel < 0 || ms.ConsoleLogLevel > 8 || !validStdio(ms.ServiceStdio, true) {
			return bad("modes.%s: console_log_level 0..8 and service_stdio null|console", mode)
		}
	}
	for mode := range m.Modes {
		if mode != "prod" && mode != "debug" {
			return bad("modes.%s: only prod and debug exist", mode)
		}
	}
	return validateZones(m.Zones)
}

func validStdio(s string, emptyOK bool) bool {
	return s == "null" || s == "console" || (emptyOK && s == "")
}

func absClean(p string) bool {
	return p != "" && path.IsAbs(p) && path.Clean(p) == p
}

// Word returns the splash word for a state name, or the upper-cased name.
func (m *Manifest) Word(state string) string {
	if w := m.Status.Words[state]; w != "" {
		return w
	}
	return strings.ToUpper(state)
}
