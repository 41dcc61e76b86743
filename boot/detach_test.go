package boot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestUnmountESP(t *testing.T) {
	for _, tc := range []struct {
		name    string
		errs    []error
		mounted bool
		wantErr error
	}{
		{name: "clean", mounted: true},
		{name: "busy twice", errs: []error{unix.EBUSY, unix.EBUSY}, mounted: true},
		{name: "busy forever", errs: []error{unix.EBUSY, unix.EBUSY, unix.EBUSY, unix.EBUSY, unix.EBUSY,
			unix.EBUSY, unix.EBUSY, unix.EBUSY, unix.EBUSY, unix.EBUSY, unix.EBUSY, unix.EBUSY, unix.EBUSY,
			unix.EBUSY, unix.EBUSY, unix.EBUSY, unix.EBUSY, unix.EBUSY, unix.EBUSY, unix.EBUSY}, mounted: true, wantErr: ErrStillMounted},
		{name: "already unmounted"},
		{name: "other error", errs: []error{unix.EPERM}, mounted: true, wantErr: ErrStillMounted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mp := filepath.Join(t.TempDir(), "sda1")
			mustMkdir(t, mp)
			fm := newFakeMounter()
			if tc.mounted {
				fm.mounted[mp] = "/dev/sda1"
			}
			fm.unmountErrs[mp] = tc.errs
			err := UnmountESP(context.Background(), Env{Mounter: fm}, &ESP{MountPoint: mp}, 150*time.Millisecond)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && len(fm.mountedTargets()) != 0 {
				t.Fatal("still mounted")
			}
		})
	}
}

func TestDetachUSB(t *testing.T) {
	m := newFakeMachine(t)
	sda := m.addDisk("sda", usbDiskPath)
	m.addPart(sda, "sda1", 1)
	// The remove attribute is a FIFO read by the "kernel" below: once 1 is
	// written, the disk leaves sysfs.
	removeFile := filepath.Join(m.sys, "bus", "usb", "devices", "2-1", "remove")
	mustMkdir(t, filepath.Dir(removeFile))
	if err := unix.Mkfifo(removeFile, 0o600); err != nil {
		t.Fatal(err)
	}
	env := m.env(nil, nil)
	esp := &ESP{Device: m.node("sda1"), Disk: "sda", Transport: "usb", USBDevice: "2-1"}
	done := make(chan string)
	go func() {
		b, _ := os.ReadFile(removeFile)
		if string(b) == "1" {
			os.Remove(filepath.Join(m.sys, "class", "block", "sda"))
		}
		done <- string(b)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := Detach(ctx, env, esp)
	if written := <-done; written != "1" {
		t.Fatalf("wrote %q to remove, want 1", written)
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != "removed" || !res.ReadOnly {
		t.Fatalf("result %+v", res)
	}
	if got, want := env.Disk.(*fakeDisk).log(), "sync;ro "+m.node("sda"); got != want {
		t.Errorf("disk calls %q, want %q (sync, then read-only)", got, want)
	}
	if err := StillGone(env, esp); err != nil {
		t.Errorf("StillGone: %v", err)
	}
}

func TestDetachFaults(t *testing.T) {
	for _, tc := range []struct {
		name      string
		esp       ESP
		roErr     error
		noRemove  bool
		wantErr   error
		wantCalls string
	}{
		{name: "sd card cannot be detached", esp: ESP{Disk: "mmcblk0", Transport: "other"}, wantErr: ErrCannotDetach},
		{name: "unknown transport", esp: ESP{Disk: "sda", Transport: ""}, wantErr: ErrCannotDetach},
		{name: "read-only fails", esp: ESP{Disk: "sda", Transport: "usb", USBDevice: "2-1"}, roErr: unix.EACCES,
			wantErr: ErrDetach, wantCalls: "sync;ro"},
		{name: "USB never leaves", esp: ESP{Disk: "sda", Transport: "usb", USBDevice: "2-1"}, wantErr: ErrNotGone,
			wantCalls: "sync;ro"},
		{name: "no remove file", esp: ESP{Disk: "sda", Transport: "usb", USBDevice: "2-1"}, noRemove: true,
			wantErr: ErrDetach, wantCalls: "sync;ro"},
		{name: "bad USB name", esp: ESP{Disk: "sda", Transport: "usb", USBDevice: "../../x"}, wantErr: ErrDetach,
			wantCalls: "sync;ro"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newFakeMachine(t)
			sda := m.addDisk("sda", usbDiskPath)
			m.addPart(sda, "sda1", 1)
			if !tc.noRemove {
				mustWrite(t, filepath.Join(m.sys, "bus", "usb", "devices", "2-1", "remove"), "")
			}
			env := m.env(nil, nil)
			env.Disk.(*fakeDisk).roErr = tc.roErr
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			_, err := Detach(ctx, env, &tc.esp)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			calls := env.Disk.(*fakeDisk).log()
			if !strings.HasPrefix(calls, tc.wantCalls) || (tc.wantCalls == "" && calls != "") {
				t.Errorf("disk calls %q, want prefix %q", calls, tc.wantCalls)
			}
		})
	}
}

func TestDetachIsolates(t *testing.T) {
	for _, tc := range []struct {
		disk, pathFmt, transport string
		parts, extraNodes        []string
		keep                     []string
	}{
		{disk: "vda", pathFmt: virtioDiskPath, transport: "virtio", parts: []string{"vda1", "vda2"}, keep: []string{"vdb", "vdb1"}},
		{disk: "nvme0n1", pathFmt: nvmeDiskPath, transport: "nvme", parts: []string{"nvme0n1p1"},
			extraNodes: []string{"ng0n1", "nvme0"}, keep: []string{"nvme1n1", "ng1n1"}},
	} {
		t.Run(tc.transport, func(t *testing.T) {
			m := newFakeMachine(t)
			dir := m.addDisk(tc.disk, tc.pathFmt)
			for i, p := range tc.parts {
				m.addPart(dir, p, i+1)
			}
			all := append(append(append([]string{tc.disk}, tc.parts...), tc.extraNodes...), tc.keep...)
			for _, n := range all {
				mustWrite(t, m.node(n), "")
			}
			env := m.env(nil, nil)
			esp := &ESP{Device: m.node(tc.parts[0]), Disk: tc.disk, Transport: tc.transport}
			if err := StillGone(env, esp); !errors.Is(err, ErrNotGone) {
				t.Fatalf("before detaching StillGone = %v, want ErrNotGone", err)
			}
			res, err := Detach(context.Background(), env, esp)
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != "isolated" || len(res.Removed) != 1+len(tc.parts)+len(tc.extraNodes) {
				t.Fatalf("result %+v", res)
			}
			for _, n := range all[:len(all)-len(tc.keep)] {
				if exists(m.node(n)) {
					t.Errorf("%s still exists", n)
				}
			}
			for _, n := range tc.keep {
				if !exists(m.node(n)) {
					t.Errorf("%s (another disk) was removed", n)
				}
			}
			if err := StillGone(env, esp); err != nil {
				t.Errorf("StillGone: %v", err)
			}
		})
	}
}
