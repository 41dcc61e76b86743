package kmod

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const testRelease = "6.1.0-test"

// fakeTree writes files (path -> content) under a new temporary root.
func fakeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// recordingLoader records the module names it was asked to insert and fails
// those listed in fail.
type recordingLoader struct {
	fail  map[string]error
	calls []string
}

func (l *recordingLoader) Init(f *os.File) error {
	name, _ := ModuleName(f.Name())
	l.calls = append(l.calls, name)
	if err := l.fail[name]; err != nil {
		return err
	}
	return nil
}

// A small tree shaped like Debian's: uas -> usb-storage -> scsi_mod ->
// scsi_common, usbcore -> usb-common; vfat -> fat; configfs built in.
var smallTree = map[string]string{
	"lib/modules/" + testRelease + "/modules.dep": `kernel/drivers/usb/common/usb-common.ko:
kernel/drivers/usb/core/usbcore.ko: kernel/drivers/usb/common/usb-common.ko
kernel/drivers/scsi/scsi_common.ko:
kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko
kernel/drivers/usb/storage/usb-storage.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko kernel/drivers/usb/core/usbcore.ko kernel/drivers/usb/common/usb-common.ko
kernel/drivers/usb/storage/uas.ko: kernel/drivers/usb/storage/usb-storage.ko kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko kernel/drivers/usb/core/usbcore.ko kernel/drivers/usb/common/usb-common.ko
kernel/drivers/usb/host/xhci-hcd.ko: kernel/drivers/usb/core/usbcore.ko kernel/drivers/usb/common/usb-common.ko
kernel/drivers/usb/host/xhci-pci.ko: kernel/drivers/usb/host/xhci-hcd.ko kernel/drivers/usb/core/usbcore.ko kernel/drivers/usb/common/usb-common.ko
kernel/fs/fat/fat.ko:
kernel/fs/fat/vfat.ko: kernel/fs/fat/fat.ko
kernel/fs/jbd2/jbd2.ko:
kernel/arch/x86/crypto/crc32c-intel.ko:
kernel/crypto/crc32c_generic.ko:
`,
	"lib/modules/" + testRelease + "/modules.softdep": `# Soft dependencies extracted from modules themselves.
softdep jbd2 pre: crypto-crc32c
softdep jbd2 pre: fs-vfat
softdep vfat ignored-without-pre
`,
	"lib/modules/" + testRelease + "/modules.alias": `# Aliases extracted from modules themselves.
alias fs-vfat vfat
alias pci:v*d*sv*sd*bc0Csc03i30* xhci_pci
alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb_storage
alias usb:v*p*d*dc*dsc*dp*ic08isc06ip62in* uas
alias usb:v13FDp3940d0[0-2]*dc*dsc*dp*ic*isc*ip*in* uas
alias fs-configfs configfs
alias crypto-crc32c crc32c_intel
alias crypto-crc32c crc32c_generic
`,
	"lib/modules/" + testRelease + "/modules.builtin": "kernel/fs/configfs/configfs.ko\n",
}

func withFiles(base map[string]string, extra map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	// Every module in modules.dep needs a file to open.
	for _, line := range strings.Split(out["lib/modules/"+testRelease+"/modules.dep"], "\n") {
		if p, _, ok := strings.Cut(line, ":"); ok {
			if _, exists := out["lib/modules/"+testRelease+"/"+p]; !exists {
				out["lib/modules/"+testRelease+"/"+p] = "\x7fELF fake module"
			}
		}
	}
	return out
}

func TestLoad(t *testing.T) {
	usbChain := []string{"usb_common", "usbcore", "scsi_common", "scsi_mod", "usb_storage", "uas"}
	cases := []struct {
		name       string
		load       []string
		extra      map[string]string
		fail       map[string]error
		remove     []string
		wantLogged int
		wantCalls  []string
		wantLoaded []string
		wantErr    error
	}{
		{name: "closure in dependency order", load: []string{"uas"},
			wantCalls: usbChain, wantLoaded: usbChain},
		{name: "shared deps loaded once", load: []string{"uas", "xhci-pci", "usb_storage"},
			wantCalls:  append(slices.Clone(usbChain), "xhci_hcd", "xhci_pci"),
			wantLoaded: append(slices.Clone(usbChain), "xhci_hcd", "xhci_pci")},
		{name: "dash and underscore are one name", load: []string{"xhci_pci", "usb-common"},
			wantCalls:  []string{"usb_common", "usbcore", "xhci_hcd", "xhci_pci"},
			wantLoaded: []string{"usb_common", "usbcore", "xhci_hcd", "xhci_pci"}},
		{name: "alias name", load: []string{"fs-vfat"},
			wantCalls: []string{"fat", "vfat"}, wantLoaded: []string{"fat", "vfat"}},
		{name: "built-in is present", load: []string{"configfs", "fs-configfs"}},
		{name: "EEXIST is loaded, not inserted", load: []string{"vfat"},
			fail:      map[string]error{"fat": unix.EEXIST},
			wantCalls: []string{"fat", "vfat"}, wantLoaded: []string{"vfat"}},
		{name: "live in sysfs is not inserted again", load: []string{"vfat"},
			extra:     map[string]string{"sys/module/fat/initstate": "live\n"},
			wantCalls: []string{"vfat"}, wantLoaded: []string{"vfat"}},
		{name: "unknown module loads nothing", load: []string{"vfat", "no-such-thing"},
			wantErr: ErrNoModule},
		{name: "refused dependency skips dependants only", load: []string{"uas", "vfat"},
			fail:       map[string]error{"scsi_mod": unix.ENODEV},
			wantCalls:  []string{"usb_common", "usbcore", "scsi_common", "scsi_mod", "fat", "vfat"},
			wantLoaded: []string{"usb_common", "usbcore", "scsi_common", "fat", "vfat"},
			wantErr:    ErrDependency},
		{name: "soft dependencies first, in alias order; only the first softdep line counts", load: []string{"jbd2"},
			wantCalls:  []string{"crc32c_intel", "crc32c_generic", "jbd2"},
			wantLoaded: []string{"crc32c_intel", "crc32c_generic", "jbd2"}},
		{name: "refused soft dependency is not an error", load: []string{"jbd2"},
			fail:       map[string]error{"crc32c_intel": unix.ENODEV},
			wantCalls:  []string{"crc32c_intel", "crc32c_generic", "jbd2"},
			wantLoaded: []string{"crc32c_generic", "jbd2"}, wantLogged: 1},
		{name: "refused hard target of a softdep alias is an error when asked for", load: []string{"crypto-crc32c"},
			fail:       map[string]error{"crc32c_intel": unix.ENODEV},
			wantCalls:  []string{"crc32c_intel", "crc32c_generic"},
			wantLoaded: []string{"crc32c_generic"}, wantErr: unix.ENODEV},
		{name: "missing module file", load: []string{"vfat"},
			remove:  []string{"lib/modules/" + testRelease + "/kernel/fs/fat/fat.ko"},
			wantErr: fs.ErrNotExist},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeTree(t, withFiles(smallTree, tc.extra))
			for _, p := range tc.remove {
				if err := os.Remove(filepath.Join(root, p)); err != nil {
					t.Fatal(err)
				}
			}
			l := &recordingLoader{fail: tc.fail}
			logged := 0
			tree := &Tree{Root: root, Release: testRelease, Loader: l, Logf: func(string, ...any) { logged++ }}
			loaded, err := tree.Load(context.Background(), tc.load)
			if logged != tc.wantLogged {
				t.Errorf("logged %d soft failures, want %d", logged, tc.wantLogged)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !slices.Equal(l.calls, tc.wantCalls) {
				t.Errorf("inserted %v, want %v", l.calls, tc.wantCalls)
			}
			if !slices.Equal(loaded, tc.wantLoaded) {
				t.Errorf("returned %v, want %v", loaded, tc.wantLoaded)
			}
		})
	}
}

func TestLoadErrorNamesModuleAndErrno(t *testing.T) {
	root := fakeTree(t, withFiles(smallTree, nil))
	l := &recordingLoader{fail: map[string]error{"fat": unix.ENODEV}}
	_, err := (&Tree{Root: root, Release: testRelease, Loader: l}).Load(context.Background(), []string{"vfat"})
	if !errors.Is(err, ErrLoad) || !errors.Is(err, unix.ENODEV) || !errors.Is(err, ErrDependency) {
		t.Fatalf("err = %v, want ErrLoad+ENODEV for fat and ErrDependency for vfat", err)
	}
	if !strings.Contains(err.Error(), "fat") || !strings.Contains(err.Error(), "vfat needs fat") {
		t.Errorf("error %q does not name the modules", err)
	}
	_, err = (&Tree{Root: root, Release: testRelease, Loader: l}).Load(context.Background(), []string{"nope_mod"})
	if !errors.Is(err, ErrNoModule) || !strings.Contains(err.Error(), "nope_mod") {
		t.Fatalf("err = %v, want ErrNoModule naming nope_mod", err)
	}
}

func TestLoadBadTree(t *testing.T) {
	cases := []struct {
		name    string
		release string
		files   map[string]string
		wantErr error
	}{
		{"no modules.dep", testRelease, map[string]string{"lib/modules/" + testRelease + "/modules.alias": ""}, ErrIndex},
		{"garbage line", testRelease, map[string]string{"lib/modules/" + testRelease + "/modules.dep": "this is not a dep line\n"}, ErrIndex},
		{"dependency not listed", testRelease, map[string]string{"lib/modules/" + testRelease + "/modules.dep": "a.ko: b.ko\n"}, ErrIndex},
		{"cycle", testRelease, map[string]string{"lib/modules/" + testRelease + "/modules.dep": "a.ko: b.ko\nb.ko: a.ko\n"}, ErrIndex},
		{"path escapes", testRelease, map[string]string{"lib/modules/" + testRelease + "/modules.dep": "../../a.ko:\n"}, ErrIndex},
		{"release with slash", "../x", map[string]string{}, ErrIndex},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeTree(t, tc.files)
			l := &recordingLoader{}
			_, err := (&Tree{Root: root, Release: tc.release, Loader: l}).Load(context.Background(), []string{"a"})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if len(l.calls) != 0 {
				t.Errorf("inserted %v from a bad tree", l.calls)
			}
		})
	}
}

func TestLoadHonoursContext(t *testing.T) {
	root := fakeTree(t, withFiles(smallTree, nil))
	l := &recordingLoader{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := (&Tree{Root: root, Release: testRelease, Loader: l}).Load(ctx, []string{"uas"})
	if !errors.Is(err, context.Canceled) || len(l.calls) != 0 {
		t.Fatalf("err = %v, calls %v; want Canceled and nothing inserted", err, l.calls)
	}
}

func TestColdplug(t *testing.T) {
	files := withFiles(smallTree, map[string]string{
		// the xHCI controller, a device with no driver, and one that appears twice
		"sys/devices/pci0000:00/0000:00:04.0/modalias":   "pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30\n",
		"sys/devices/pci0000:00/0000:00:05.0/modalias":   "pci:v00001234d00001111sv00001AF4sd00001100bc03sc00i00\n",
		"sys/devices/pci0000:00/0000:00:06.0/modalias":   "pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30\n",
		"sys/devices/platform/serial8250/tty/x/modalias": "platform:serial8250\n",
	})
	root := fakeTree(t, files)
	l := &recordingLoader{}
	tree := &Tree{Root: root, Release: testRelease, Loader: l}
	loaded, err := tree.Coldplug(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"usb_common", "usbcore", "xhci_hcd", "xhci_pci"}
	if !slices.Equal(loaded, want) || !slices.Equal(l.calls, want) {
		t.Fatalf("first coldplug loaded %v (calls %v), want %v", loaded, l.calls, want)
	}

	// xhci is up: a UAS stick appears, whose usb-storage dependency the
	// kernel refuses, and a second run must neither reload xhci nor retry.
	stick := filepath.Join(root, "sys/devices/pci0000:00/0000:00:04.0/usb2/2-1/2-1:1.0")
	if err := os.MkdirAll(stick, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stick, "modalias"), []byte("usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip62in00\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	l.calls = nil
	l.fail = map[string]error{"usb_storage": unix.ENOMEM}
	loaded, err = tree.Coldplug(context.Background())
	if !errors.Is(err, unix.ENOMEM) || !errors.Is(err, ErrDependency) {
		t.Fatalf("second coldplug err = %v, want ENOMEM for usb_storage and ErrDependency for uas", err)
	}
	wantCalls := []string{"scsi_common", "scsi_mod", "usb_storage"}
	if !slices.Equal(l.calls, wantCalls) || !slices.Equal(loaded, []string{"scsi_common", "scsi_mod"}) {
		t.Fatalf("second coldplug calls %v loaded %v, want calls %v", l.calls, loaded, wantCalls)
	}

	l.calls = nil
	loaded, err = tree.Coldplug(context.Background())
	if err != nil || len(l.calls) != 0 || len(loaded) != 0 {
		t.Fatalf("third coldplug: loaded %v calls %v err %v; want nothing retried", loaded, l.calls, err)
	}
	// An explicit Load does retry.
	l.fail = nil
	loaded, err = tree.Load(context.Background(), []string{"uas"})
	if err != nil || !slices.Equal(loaded, []string{"usb_storage", "uas"}) {
		t.Fatalf("explicit Load after failure: %v %v", loaded, err)
	}
}

func TestColdplugWithoutSysfs(t *testing.T) {
	root := fakeTree(t, withFiles(smallTree, nil))
	_, err := (&Tree{Root: root, Release: testRelease, Loader: &recordingLoader{}}).Coldplug(context.Background())
	if !errors.Is(err, ErrSysfs) {
		t.Fatalf("err = %v, want ErrSysfs", err)
	}
}

func TestIndexResolve(t *testing.T) {
	files := withFiles(smallTree, nil)
	ix, err := ParseIndex(IndexFiles{
		Dep:     []byte(files["lib/modules/"+testRelease+"/modules.dep"]),
		Alias:   []byte(files["lib/modules/"+testRelease+"/modules.alias"]),
		Builtin: []byte(files["lib/modules/"+testRelease+"/modules.builtin"]),
	})
	if err != nil {
		t.Fatal(err)
	}
	// The 13FD:3940 stick matches both the vendor entry and the class entry of uas.
	got := ix.Match("usb:v13FDp3940d0100dc00dsc00dp00ic08isc06ip62in00")
	if !slices.Equal(got, []string{"uas"}) {
		t.Errorf("Match = %v", got)
	}
	// '[0-2]' is a class: d03 does not match the vendor entry nor the class.
	if got := ix.Match("usb:v13FDp3940d0300dc00dsc00dp00ic03isc01ip01in00"); len(got) != 0 {
		t.Errorf("Match of a HID interface = %v, want none", got)
	}
	if !ix.Builtin("configfs") || ix.Has("configfs") || !ix.Has("usb-storage") || ix.Path("usb-storage") != "kernel/drivers/usb/storage/usb-storage.ko" {
		t.Errorf("Builtin/Has/Path disagree with the index")
	}
}

// A refused soft dependency is logged once per Tree, not on every Load.
func TestSoftFailureLoggedOnce(t *testing.T) {
	root := fakeTree(t, withFiles(smallTree, nil))
	l := &recordingLoader{fail: map[string]error{"crc32c_intel": unix.ENODEV}}
	logged := 0
	tree := &Tree{Root: root, Release: testRelease, Loader: l, Logf: func(string, ...any) { logged++ }}
	for i := 0; i < 2; i++ {
		if _, err := tree.Load(context.Background(), []string{"jbd2"}); err != nil {
			t.Fatal(err)
		}
	}
	if logged != 1 || !slices.Equal(l.calls, []string{"crc32c_intel", "crc32c_generic", "jbd2"}) {
		t.Fatalf("logged %d, calls %v", logged, l.calls)
	}
}
