package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"inert/boot/kmod"
	"inert/e2e/wifiwrap/apconf"
)

const (
	failedPrefix = apconf.FailedLine
	// apIface is the radio that becomes the access point; wlan0 stays
	// with inert.
	apIface = "wlan1"
	// apReadyWait bounds hostapd's start under TCG.
	apReadyWait = 90 * time.Second
	inertInit   = "/init"
)

// earlyMounts are what the wrapper needs before inert mounts them itself.
var earlyMounts = []struct{ source, target, fstype string }{
	{"proc", "/proc", "proc"},
	{"sysfs", "/sys", "sysfs"},
	{"devtmpfs", "/dev", "devtmpfs"},
}

// runInit prepares the radios and the access point, then execs inert. A
// failure is reported and inert still starts, so the test sees its events.
func runInit() error {
	logf("wifiwrap: test-only wrapper init (never in a production image)")
	err := prepare()
	if err != nil {
		logf("%s%v", failedPrefix, err)
	}
	for i := len(earlyMounts) - 1; i >= 0; i-- {
		_ = unix.Unmount(earlyMounts[i].target, unix.MNT_DETACH)
	}
	argv := append([]string{inertInit}, os.Args[1:]...)
	return fmt.Errorf("exec %s: %w", inertInit, syscall.Exec(inertInit, argv, os.Environ()))
}

func prepare() error {
	for _, m := range earlyMounts {
		if err := unix.Mount(m.source, m.target, m.fstype, unix.MS_NOSUID, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s: %w", m.target, err)
		}
	}
	f, err := os.Open(apconf.Path)
	if err != nil {
		return err
	}
	cfg, err := apconf.Parse(f)
	f.Close()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), apReadyWait)
	defer cancel()
	if err := loadHwsim(ctx); err != nil {
		return err
	}
	if _, err := startSelf(roleDump, 0, nil); err != nil {
		return err
	}
	bssid, err := startAP(ctx)
	if err != nil {
		return err
	}
	logf("%s%s (ssid %s, channel %d)", apconf.ReadyLine, bssid, cfg.SSID, cfg.Channel)
	return nil
}

// hwsimLoader passes radios=2 to mac80211_hwsim; its dependencies load
// without parameters, as kmod would load them.
type hwsimLoader struct{}

func (hwsimLoader) Init(f *os.File) error {
	if filepath.Base(f.Name()) != "mac80211_hwsim.ko" {
		return kmod.FinitLoader{}.Init(f)
	}
	return unix.FinitModule(int(f.Fd()), "radios=2", 0)
}

// radioModules are the simulated radios and the kernel crypto WPA2-CCMP
// keys need; mac80211 asks for the ciphers through request_module, which
// has no modprobe to call in an initramfs. A WiFi profile lists the same.
var radioModules = []string{"ccm", "ctr", "cmac", "mac80211_hwsim"}

func loadHwsim(ctx context.Context) error {
	t := &kmod.Tree{Root: "/", Loader: hwsimLoader{}}
	if _, err := t.Load(ctx, radioModules); err != nil {
		return fmt.Errorf("load %v: %w", radioModules, err)
	}
	for _, name := range []string{"wlan0", apIface} {
		if _, err := os.Stat("/sys/class/net/" + name + "/phy80211"); err != nil {
			return fmt.Errorf("mac80211_hwsim loaded but %s is missing: %w", name, err)
		}
	}
	return nil
}

// startSelf starts this binary in role with extra clone flags and files
// (fd 3 onwards).
func startSelf(role string, clone uintptr, files []*os.File) (*exec.Cmd, error) {
	cmd := exec.Command(apconf.WrapperPath, role)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.ExtraFiles = files
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: clone}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s role: %w", role, err)
	}
	// inert (PID 1 after the exec) reaps it whenever it ends.
	return cmd, nil
}

// startAP starts the "ap" role in new network and mount namespaces, hands
// it wlan1's wiphy, and waits for its ready line (the BSSID).
func startAP(ctx context.Context) (string, error) {
	phy, err := wiphyIndex(apIface)
	if err != nil {
		return "", err
	}
	goR, goW, err := os.Pipe()
	if err != nil {
		return "", err
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return "", err
	}
	cmd, err := startSelf(roleAP, unix.CLONE_NEWNET|unix.CLONE_NEWNS, []*os.File{goR, readyW})
	goR.Close()
	readyW.Close()
	if err != nil {
		return "", err
	}
	if err := moveWiphy(phy, cmd.Process.Pid); err != nil {
		return "", err
	}
	if _, err := goW.Write([]byte("go\n")); err != nil {
		return "", fmt.Errorf("start the access point: %w", err)
	}
	goW.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = readyR.SetReadDeadline(d)
	}
	line, err := bufio.NewReader(readyR).ReadString('\n')
	readyR.Close()
	if err != nil {
		return "", fmt.Errorf("waiting for the access point: %w", err)
	}
	bssid, ok := strings.CutPrefix(strings.TrimSpace(line), "ready ")
	if !ok {
		return "", fmt.Errorf("access point: %s", strings.TrimSpace(line))
	}
	return bssid, nil
}
