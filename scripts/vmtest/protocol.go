package vmtest

// Plan is what the host tells the runner, at PlanPath in the initramfs.
type Plan struct {
	Tests []PlanTest `json:"tests"`
	// Timeout bounds each test binary (passed as -test.timeout).
	Timeout string `json:"timeout"`
}

// PlanTest is one test binary in the guest.
type PlanTest struct {
	Name string   `json:"name"` // for reports
	Path string   `json:"path"` // the binary in the guest
	Dir  string   `json:"dir"`  // working directory (holds the package's testdata)
	Args []string `json:"args"` // after -test.v
}

// PlanPath is where the plan lives in the guest (no leading slash: an
// archive path).
const PlanPath = "etc/vmtest/plan.json"

// Message is one JSON line from the runner on the events port.
type Message struct {
	Kind   string `json:"kind"` // "start", "output", "exit", "summary", "error"
	Binary string `json:"binary,omitempty"`
	Line   string `json:"line,omitempty"`
	Code   int    `json:"code,omitempty"`
	Pass   int    `json:"pass,omitempty"`
	Fail   int    `json:"fail,omitempty"`
}

// HotplugRequest is what a guest test prints (alone on a line of its
// standard output) to ask the host to plug in a USB stick now: the prefix,
// then the 0-based index into Options.HotplugUSB. The host answers nothing
// on the port; the test awaits the kernel's uevent for the new disk, which
// is the point of such a test. A request the host cannot serve is reported
// as a guest error and fails the run.
const HotplugRequest = "vmtest-hotplug-usb "

// SharePath is where Options.Share appears in the guest (read-only data
// the host prepared for the tests, e.g. what it put on a stick). The runner
// exports it as $INERT_VMTEST_SHARE when it exists.
const SharePath = "vmtest/share"

// Message kinds.
const (
	KindStart   = "start"
	KindOutput  = "output"
	KindExit    = "exit"
	KindSummary = "summary"
	KindError   = "error"
)
