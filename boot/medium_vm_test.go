//go:build vmtest

package boot

// Privileged tests of the boot medium on a real kernel: vfat mounts, real
// uevents, efivarfs under OVMF, BLKROSET, USB removal and what can (and
// cannot) bring a removed stick back. They run as root in a QEMU guest
// (scripts/vmtest.sh, group "medium"), which attaches the disks that
// scripts/vmtest/fixtures builds with the same code as `inert image`:
//
//	USB port 1: esp-usb.img     the boot stick (config.json + wifi.conf)
//	USB port 2: scratch-usb.img a blank stick
//	virtio:     esp-virtio.img  a second ESP
//	hot-plug 0: esp-hotplug.img a third ESP, plugged in on request
//
// and $INERT_VMTEST_SHARE with the operator files as written and the
// PARTUUIDs as sgdisk reads them. The steps share one machine whose state
// each step changes (a removed stick stays removed), so they are one test.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"golang.org/x/sys/unix"
)

// The sticks' USB serial numbers, as scripts/vmtest attaches them.
const (
	bootStickSerial    = "inert-usbdisk0"
	scratchStickSerial = "inert-usbdisk1"
	lateStickSerial    = "inert-hotplug0"
	// hotplugLateStick is the line asking the host to plug in stick 0
	// (scripts/vmtest.HotplugRequest; boot imports no other room).
	hotplugLateStick = "vmtest-hotplug-usb 0"
	efivarsDir       = "/sys/firmware/efi/efivars"
	// deviceWait bounds waits for USB enumeration under TCG.
	deviceWait = 60 * time.Second
)

// vmShare is what the host prepared: the operator files as put on the
// boot stick and the PARTUUIDs sgdisk read from the images.
type vmShare struct {
	USBPartUUID     string `json:"usb_partuuid"`
	VirtioPartUUID  string `json:"virtio_partuuid"`
	HotplugPartUUID string `json:"hotplug_partuuid"`
	config, wifi    []byte
}

func loadShare(t *testing.T) vmShare {
	t.Helper()
	dir := os.Getenv("INERT_VMTEST_SHARE")
	if dir == "" {
		t.Fatal("INERT_VMTEST_SHARE unset: run through scripts/vmtest.sh (fixtures missing)")
	}
	var s vmShare
	b, err := os.ReadFile(filepath.Join(dir, "esp.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.config, err = os.ReadFile(filepath.Join(dir, "config.json")); err != nil {
		t.Fatal(err)
	}
	if s.wifi, err = os.ReadFile(filepath.Join(dir, "wifi.conf")); err != nil {
		t.Fatal(err)
	}
	return s
}

// usbDeviceDir returns the sysfs directory (resolved) of the USB device
// with the given serial, or "" when none is enumerated. It reads sysfs
// directly, not through the code under test.
func usbDeviceDir(serial string) string {
	files, _ := filepath.Glob("/sys/bus/usb/devices/*/serial")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil && strings.TrimSpace(string(b)) == serial {
			real, err := filepath.EvalSymlinks(filepath.Dir(f))
			if err == nil {
				return real
			}
		}
	}
	return ""
}

// stickDisks lists the sd* whole disks below the USB device with serial.
func stickDisks(serial string) []string {
	dev := usbDeviceDir(serial)
	if dev == "" {
		return nil
	}
	var disks []string
	entries, _ := os.ReadDir("/sys/class/block")
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "sd") {
			continue
		}
		if _, err := os.Stat(filepath.Join("/sys/class/block", name, "partition")); err == nil {
			continue
		}
		real, err := filepath.EvalSymlinks(filepath.Join("/sys/class/block", name))
		if err == nil && strings.HasPrefix(real, dev+"/") {
			disks = append(disks, name)
		}
	}
	return disks
}

// anySDDisk reports every sd* name in sysfs, for failure messages.
func anySDDisk() []string {
	var out []string
	entries, _ := os.ReadDir("/sys/class/block")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "sd") {
			out = append(out, e.Name())
		}
	}
	return out
}

// awaitStickDisk waits until the stick has exactly one disk with a first
// partition (want) or none (!want), and returns the disk's name.
func awaitStickDisk(t *testing.T, serial string, partitioned, want bool) string {
	t.Helper()
	var disk string
	err := pollUntil(t.Context(), "stick "+serial+" disk", deviceWait, func() (bool, error) {
		disks := stickDisks(serial)
		if !want {
			return len(disks) == 0, nil
		}
		if len(disks) != 1 {
			return false, nil
		}
		disk = disks[0]
		if !partitioned {
			return true, nil
		}
		_, err := os.Stat(filepath.Join("/sys/class/block", disk, disk+"1"))
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("%v (sd disks now: %v)", err, anySDDisk())
	}
	return disk
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func writeAttr(t *testing.T, path, value string) {
	t.Helper()
	if err := writeSysfs(path, value); err != nil {
		t.Fatal(err)
	}
}

// mountOptions returns the fstype and options /proc/mounts lists for mp,
// or "" when mp is not a mount point.
func mountOptions(t *testing.T, mp string) (fstype, opts string) {
	t.Helper()
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[1] == mp {
			fstype, opts = f[2], f[3]
		}
	}
	return fstype, opts
}

// vfatMounts lists every vfat mount point, so a step can prove it left none.
func vfatMounts(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[2] == "vfat" {
			out = append(out, f[1])
		}
	}
	return out
}

// efivarFile is the efivarfs path of a boot-loader-interface variable.
func efivarFile(name string) string {
	return filepath.Join(efivarsDir, name+"-"+loaderVendorGUID)
}

// setLoaderVar writes (or, with value "", deletes) a string variable the
// way systemd-boot and the stub encode it: UTF-16LE with a terminating
// NUL. They write it volatile (BS|RT) before ExitBootServices; after it,
// UEFI accepts only non-volatile variables, so NV is added here (the VM's
// vars file is a private copy). efivarfs is remounted read-write only
// for the write and read-only again afterwards, as inert leaves it.
func setLoaderVar(t *testing.T, name, value string) {
	t.Helper()
	if err := unix.Mount("", efivarsDir, "", unix.MS_REMOUNT, ""); err != nil {
		t.Fatalf("remount efivarfs rw: %v", err)
	}
	defer func() {
		if err := unix.Mount("", efivarsDir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			t.Fatalf("remount efivarfs ro: %v", err)
		}
	}()
	path := efivarFile(name)
	if _, err := os.Stat(path); err == nil {
		clearImmutable(t, path)
		if err := os.Remove(path); err != nil {
			t.Fatalf("delete %s: %v", name, err)
		}
	}
	if value == "" {
		return
	}
	const nonVolatile, bootServiceAccess, runtimeAccess = 0x1, 0x2, 0x4
	buf := binary.LittleEndian.AppendUint32(nil, nonVolatile|bootServiceAccess|runtimeAccess)
	for _, u := range utf16.Encode([]rune(value + "\x00")) {
		buf = binary.LittleEndian.AppendUint16(buf, u)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	// efivarfs takes a variable in one write.
	if _, err := f.Write(buf); err != nil {
		f.Close()
		t.Fatalf("write %s: %v", name, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// fsImmutableFL is FS_IMMUTABLE_FL from linux/fs.h (x/sys/unix lacks it).
const fsImmutableFL = 0x00000010

// clearImmutable drops the immutable flag efivarfs puts on variables.
func clearImmutable(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flags, err := unix.IoctlGetInt(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		t.Fatalf("FS_IOC_GETFLAGS %s: %v", path, err)
	}
	flags &^= fsImmutableFL
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, flags); err != nil {
		t.Fatalf("FS_IOC_SETFLAGS %s: %v", path, err)
	}
}

// countingUevents records how many waits ended on a matching uevent, so a
// test can tell an event-driven round from one that ran to its deadline.
type countingUevents struct {
	inner   UeventSource
	matched int
}

func (c *countingUevents) WaitFor(ctx context.Context, name string, match func(Uevent) bool) error {
	err := c.inner.WaitFor(ctx, name, match)
	if err == nil {
		c.matched++
	}
	return err
}

func TestVMBootMedium(t *testing.T) {
	share := loadShare(t)
	uev, err := OpenNetlinkUevents()
	if err != nil {
		t.Fatal(err)
	}
	defer uev.Close()
	counting := &countingUevents{inner: uev}
	env := DefaultEnv("/run/vmtest-esp", counting)
	spec := DefaultESPSpec()
	spec.Rounds = 1

	bootDisk := awaitStickDisk(t, bootStickSerial, true, true)
	scratchDisk := awaitStickDisk(t, scratchStickSerial, false, true)
	t.Logf("boot stick %s, scratch stick %s, disks %v", bootDisk, scratchDisk, anySDDisk())
	if err := pollUntil(t.Context(), "virtio ESP vda1", deviceWait, func() (bool, error) {
		_, err := os.Stat("/sys/class/block/vda/vda1")
		return err == nil, nil
	}); err != nil {
		t.Fatal(err)
	}

	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("efivarfs read-only", func(t *testing.T) {
		if err := os.MkdirAll(efivarsDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("efivarfs", efivarsDir, "efivarfs",
			unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			t.Fatalf("mount efivarfs (OVMF boot?): %v", err)
		}
		// A -kernel boot has no systemd stub: nothing reports the partition.
		if _, _, err := FirmwareBootPartUUID(efivarsDir); !errors.Is(err, ErrNoFirmwareVar) {
			t.Fatalf("FirmwareBootPartUUID = %v, want ErrNoFirmwareVar", err)
		}
		err := os.WriteFile(efivarFile(LoaderDevicePartUUIDVar), []byte{6, 0, 0, 0, 'x', 0}, 0o644)
		if !errors.Is(err, unix.EROFS) {
			t.Fatalf("creating a variable on the read-only mount: %v, want EROFS", err)
		}
		if _, opts := mountOptions(t, efivarsDir); !strings.HasPrefix(opts, "ro,") {
			t.Fatalf("efivarfs options %q", opts)
		}
	})

	step("two ESPs without a firmware binding are refused", func(t *testing.T) {
		_, err := FindESP(t.Context(), env, spec, logTo(t))
		if !errors.Is(err, ErrAmbiguousESP) {
			t.Fatalf("FindESP = %v, want ErrAmbiguousESP", err)
		}
		if m := vfatMounts(t); len(m) != 0 {
			t.Fatalf("candidates left mounted: %v", m)
		}
	})

	var esp *ESP
	step("firmware binding selects the boot stick", func(t *testing.T) {
		// systemd-boot writes the UUID upper case.
		setLoaderVar(t, LoaderDevicePartUUIDVar, strings.ToUpper(share.USBPartUUID))
		u, src, err := FirmwareBootPartUUID(efivarsDir)
		if err != nil || u != share.USBPartUUID || src != LoaderDevicePartUUIDVar {
			t.Fatalf("FirmwareBootPartUUID = %q, %q, %v; want %q from %s", u, src, err, share.USBPartUUID, LoaderDevicePartUUIDVar)
		}
		esp, err = FindESP(t.Context(), env, spec, logTo(t))
		if err != nil {
			t.Fatal(err)
		}
		usbDev := filepath.Base(usbDeviceDir(bootStickSerial))
		if esp.Device != "/dev/"+bootDisk+"1" || esp.Disk != bootDisk || esp.Transport != string(TransportUSB) ||
			esp.USBDevice != usbDev || esp.PartUUID != share.USBPartUUID || esp.FirmwareSource != LoaderDevicePartUUIDVar {
			t.Fatalf("ESP = %+v; want %s1 on USB device %s with PARTUUID %s", esp, bootDisk, usbDev, share.USBPartUUID)
		}
		fstype, opts := mountOptions(t, esp.MountPoint)
		if fstype != "vfat" {
			t.Fatalf("%s is %q, want vfat", esp.MountPoint, fstype)
		}
		have := map[string]bool{}
		for _, o := range strings.Split(opts, ",") {
			have[o] = true
		}
		for _, o := range []string{"ro", "nosuid", "nodev", "noexec", "noatime"} {
			if !have[o] {
				t.Errorf("mount option %s missing: %s", o, opts)
			}
		}
	})

	step("operator files read once from the mounted stick", func(t *testing.T) {
		of := ReadOperatorFiles(esp.MountPoint, DefaultESPSpec(), true)
		if of.ConfigErr != nil || of.ConfigPath != spec.Config.Paths[0] {
			t.Fatalf("config: path %q err %v", of.ConfigPath, of.ConfigErr)
		}
		if !bytes.Equal(of.ConfigRaw, share.config) || !bytes.Equal(of.Config, share.config) {
			t.Fatalf("config bytes differ from what the host wrote:\n%q\n%q", of.ConfigRaw, share.config)
		}
		ssid, _, _ := bytes.Cut(share.wifi, []byte("\n"))
		if of.WifiErr != nil || of.Wifi == nil || of.Wifi.SSID != string(ssid) {
			t.Fatalf("wifi: %v, %v; want SSID %q", of.Wifi, of.WifiErr, ssid)
		}
		off := ReadOperatorFiles(esp.MountPoint, DefaultESPSpec(), false)
		if off.Wifi != nil || off.WifiPath != "" {
			t.Fatalf("wifi.conf read without the wifi flag: %q", off.WifiPath)
		}
	})

	step("unmount waits out a busy ESP and then succeeds", func(t *testing.T) {
		busy, err := os.Open(filepath.Join(esp.MountPoint, spec.MarkerFile))
		if err != nil {
			t.Fatal(err)
		}
		err = UnmountESP(t.Context(), env, esp, 300*time.Millisecond)
		busy.Close()
		if !errors.Is(err, ErrStillMounted) {
			t.Fatalf("UnmountESP with an open file = %v, want ErrStillMounted", err)
		}
		if err := UnmountESP(t.Context(), env, esp, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if fstype, _ := mountOptions(t, esp.MountPoint); fstype != "" {
			t.Fatalf("%s still mounted (%s)", esp.MountPoint, fstype)
		}
		if _, err := os.Stat(esp.MountPoint); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("mount point left behind: %v", err)
		}
	})

	step("detach removes the USB stick", func(t *testing.T) {
		res, err := Detach(t.Context(), env, esp)
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != "removed" || !res.ReadOnly || res.Disk != bootDisk {
			t.Fatalf("Detach = %+v", res)
		}
		if d := stickDisks(bootStickSerial); len(d) != 0 || usbDeviceDir(bootStickSerial) != "" {
			t.Fatalf("stick still there: disks %v", d)
		}
		for _, p := range []string{"/sys/class/block/" + bootDisk, "/dev/" + bootDisk, "/dev/" + bootDisk + "1"} {
			if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s still exists", p)
			}
		}
		if err := StillGone(env, esp); err != nil {
			t.Fatal(err)
		}
	})

	step("PCI and SCSI rescans do not bring it back", func(t *testing.T) {
		writeAttr(t, "/sys/bus/pci/rescan", "1") // synchronous
		hosts, _ := filepath.Glob("/sys/class/scsi_host/host*/scan")
		for _, h := range hosts {
			writeAttr(t, h, "- - -") // synchronous
		}
		if d := stickDisks(bootStickSerial); len(d) != 0 || usbDeviceDir(bootStickSerial) != "" {
			t.Fatalf("removed stick came back: %v", d)
		}
		if stickDisks(scratchStickSerial) == nil {
			t.Fatal("scratch stick vanished: the rescans disturbed more than they should")
		}
	})

	rootHub := filepath.Join("/sys/bus/usb/devices", rootHubOf(t, scratchStickSerial))
	scratchPort := filepath.Base(usbDeviceDir(scratchStickSerial))
	step("after lockdown, re-authorising the root hub brings nothing back", func(t *testing.T) {
		rep, err := LockdownUSB(env)
		if err != nil || rep.RootHubs < 1 {
			t.Fatalf("LockdownUSB = %+v, %v", rep, err)
		}
		reauthorize(t, rootHub)
		// The scratch stick is the control: once its port is enumerated
		// again (the hub walks its ports in order), so was the boot stick's.
		port := filepath.Join("/sys/bus/usb/devices", scratchPort)
		if err := pollUntil(t.Context(), "scratch stick re-enumerated", deviceWait, func() (bool, error) {
			_, err := os.Stat(filepath.Join(port, "authorized"))
			return err == nil, nil
		}); err != nil {
			t.Fatal(err)
		}
		if a := readTrim(t, filepath.Join(port, "authorized")); a != "0" {
			t.Fatalf("new device authorised (%s) despite authorized_default=0", a)
		}
		if d := anySDDisk(); len(d) != 0 {
			t.Fatalf("disks appeared under lockdown: %v", d)
		}
	})

	step("without lockdown, re-authorising the root hub undoes remove (why lockdown follows detach)", func(t *testing.T) {
		roots, _ := filepath.Glob("/sys/bus/usb/devices/usb*/authorized_default")
		for _, r := range roots {
			writeAttr(t, r, "1")
		}
		reauthorize(t, rootHub)
		bootDisk = awaitStickDisk(t, bootStickSerial, true, true)
		scratchDisk = awaitStickDisk(t, scratchStickSerial, false, true)
		t.Logf("kernel re-enumerated the removed stick as %s: remove holds only while the root hub is not reset", bootDisk)
		var err error
		if esp, err = FindESP(t.Context(), env, spec, logTo(t)); err != nil {
			t.Fatal(err)
		}
		if err := UnmountESP(t.Context(), env, esp, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if res, err := Detach(t.Context(), env, esp); err != nil || res.Outcome != "removed" {
			t.Fatalf("second Detach = %+v, %v", res, err)
		}
	})

	step("SCSI delete is undone by a host scan (why inert does not use it)", func(t *testing.T) {
		writeAttr(t, filepath.Join("/sys/class/block", scratchDisk, "device", "delete"), "1")
		awaitStickDisk(t, scratchStickSerial, false, false)
		hosts, _ := filepath.Glob("/sys/class/scsi_host/host*/scan")
		for _, h := range hosts {
			writeAttr(t, h, "- - -")
		}
		scratchDisk = awaitStickDisk(t, scratchStickSerial, false, true)
	})

	step("BLKROSET makes the disk read-only", func(t *testing.T) {
		ro := filepath.Join("/sys/class/block", scratchDisk, "ro")
		if v := readTrim(t, ro); v != "0" {
			t.Fatalf("%s = %s before BLKROSET", ro, v)
		}
		if err := (SysDisk{}).SetReadOnly("/dev/" + scratchDisk); err != nil {
			t.Fatal(err)
		}
		if v := readTrim(t, ro); v != "1" {
			t.Fatalf("%s = %s after BLKROSET", ro, v)
		}
		f, err := os.OpenFile("/dev/"+scratchDisk, os.O_WRONLY, 0)
		if err == nil {
			_, err = f.WriteAt(make([]byte, 512), 0)
			f.Close()
		}
		if err == nil {
			t.Fatal("writing the read-only disk succeeded")
		}
		t.Logf("write refused: %v", err)
	})

	step("virtio ESP is isolated", func(t *testing.T) {
		// The stub's variable wins over the loader's.
		setLoaderVar(t, StubDevicePartUUIDVar, share.VirtioPartUUID)
		if u, src, err := FirmwareBootPartUUID(efivarsDir); err != nil || u != share.VirtioPartUUID || src != StubDevicePartUUIDVar {
			t.Fatalf("FirmwareBootPartUUID = %q, %q, %v", u, src, err)
		}
		var err error
		if esp, err = FindESP(t.Context(), env, spec, logTo(t)); err != nil {
			t.Fatal(err)
		}
		if esp.Device != "/dev/vda1" || esp.Transport != string(TransportVirtio) || esp.PartUUID != share.VirtioPartUUID {
			t.Fatalf("ESP = %+v", esp)
		}
		if err := UnmountESP(t.Context(), env, esp, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		res, err := Detach(t.Context(), env, esp)
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != "isolated" || !res.ReadOnly {
			t.Fatalf("Detach = %+v", res)
		}
		for _, n := range []string{"/dev/vda", "/dev/vda1"} {
			if !containsString(res.Removed, n) {
				t.Errorf("%s not in Removed %v", n, res.Removed)
			}
			if _, err := os.Lstat(n); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s still exists", n)
			}
		}
		// The kernel keeps the disk (virtio cannot be unplugged from
		// inside), read-only: that is what "isolated" means.
		if v := readTrim(t, "/sys/class/block/vda/ro"); v != "1" {
			t.Errorf("vda ro = %s", v)
		}
		if err := StillGone(env, esp); err != nil {
			t.Fatal(err)
		}
	})

	step("a late stick is found through its uevent", func(t *testing.T) {
		setLoaderVar(t, StubDevicePartUUIDVar, share.HotplugPartUUID)
		late := spec
		late.Rounds, late.RoundSeconds = 8, 30
		// A fresh socket, opened just before the scan as the boot step
		// does: the first socket holds every uevent of the steps above.
		fresh, err := OpenNetlinkUevents()
		if err != nil {
			t.Fatal(err)
		}
		defer fresh.Close()
		counted := &countingUevents{inner: fresh}
		lateEnv := env
		lateEnv.Uevents = counted
		asked := false
		esp, err := FindESP(t.Context(), lateEnv, late, func(line string) {
			t.Log(line)
			if !asked && strings.HasPrefix(line, "scan 1:") {
				asked = true
				fmt.Println(hotplugLateStick)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if !asked {
			t.Fatal("FindESP found a stick before the late one was plugged in")
		}
		if counted.matched == 0 {
			t.Fatal("no round ended on a block uevent")
		}
		lateDisk := awaitStickDisk(t, lateStickSerial, true, true)
		if esp.Disk != lateDisk || esp.Transport != string(TransportUSB) || esp.PartUUID != share.HotplugPartUUID {
			t.Fatalf("ESP = %+v; want the late stick %s", esp, lateDisk)
		}
		if err := UnmountESP(t.Context(), env, esp, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if res, err := Detach(t.Context(), env, esp); err != nil || res.Outcome != "removed" {
			t.Fatalf("Detach = %+v, %v", res, err)
		}
	})

	step("rebinding the USB controller undoes remove and lockdown (root can; the service must not be able to)", func(t *testing.T) {
		if _, err := LockdownUSB(env); err != nil {
			t.Fatal(err)
		}
		hub, err := filepath.EvalSymlinks(filepath.Join("/sys/bus/usb/devices", rootHubOf(t, scratchStickSerial)))
		if err != nil {
			t.Fatal(err)
		}
		hc := filepath.Dir(hub) // the controller's PCI device
		drv, err := filepath.EvalSymlinks(filepath.Join(hc, "driver"))
		if err != nil {
			t.Fatal(err)
		}
		writeAttr(t, filepath.Join(drv, "unbind"), filepath.Base(hc))
		if d := anySDDisk(); len(d) != 0 {
			t.Fatalf("disks left after unbinding %s: %v", hc, d)
		}
		writeAttr(t, filepath.Join(drv, "bind"), filepath.Base(hc))
		// A new host controller starts with authorized_default from the
		// usbcore default: the removed late stick is enumerated again.
		lateDisk := awaitStickDisk(t, lateStickSerial, true, true)
		t.Logf("after rebinding %s the removed stick is back as %s", filepath.Base(hc), lateDisk)
	})
}

// rootHubOf names the root hub (usbN) above the stick with serial.
func rootHubOf(t *testing.T, serial string) string {
	t.Helper()
	dev := usbDeviceDir(serial)
	for _, c := range strings.Split(dev, "/") {
		if usbBusRE.MatchString(c) {
			return c
		}
	}
	t.Fatalf("no root hub above %q (%s)", serial, dev)
	return ""
}

// reauthorize de-authorises a root hub (its children disconnect) and
// authorises it again (the hub is probed anew and enumerates its ports).
func reauthorize(t *testing.T, rootHub string) {
	t.Helper()
	writeAttr(t, filepath.Join(rootHub, "authorized"), "0")
	if err := pollUntil(t.Context(), "root hub children gone", deviceWait, func() (bool, error) {
		return len(anySDDisk()) == 0, nil
	}); err != nil {
		t.Fatal(err)
	}
	writeAttr(t, filepath.Join(rootHub, "authorized"), "1")
}

// logTo is FindESP's progress callback writing to the test log.
func logTo(t *testing.T) func(string) {
	return func(line string) { t.Log(line) }
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
