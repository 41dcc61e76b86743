package boot

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseUevent(t *testing.T) {
	msg := []byte("add@/devices/pci0000:00/0000:00:04.0/usb2/2-1/host0/block/sda/sda1\x00" +
		"ACTION=add\x00DEVPATH=/devices/pci0000:00/0000:00:04.0/usb2/2-1/host0/block/sda/sda1\x00" +
		"SUBSYSTEM=block\x00MAJOR=8\x00MINOR=1\x00DEVNAME=sda1\x00DEVTYPE=partition\x00PARTN=1\x00SEQNUM=1234\x00")
	u, err := ParseUevent(msg)
	if err != nil {
		t.Fatal(err)
	}
	if u.Action != "add" || !strings.HasSuffix(u.DevPath, "/sda1") || u.Vars["DEVNAME"] != "sda1" ||
		u.Vars["PARTN"] != "1" || !IsBlockAdd(u) {
		t.Fatalf("parsed %+v", u)
	}
	rm, err := ParseUevent([]byte("remove@/devices/x/block/sda\x00ACTION=remove\x00SUBSYSTEM=block\x00"))
	if err != nil || IsBlockAdd(rm) {
		t.Fatalf("remove event: %+v, %v", rm, err)
	}
	for name, b := range map[string][]byte{
		"empty":            nil,
		"libudev":          []byte("libudev\x00\xfe\xed\xca\xfe"),
		"no devpath":       []byte("add@\x00ACTION=add\x00"),
		"relative devpath": []byte("add@devices/x\x00ACTION=add\x00"),
		"no action":        []byte("@/devices/x\x00"),
		"field without =":  []byte("add@/devices/x\x00ACTION\x00"),
		"action mismatch":  []byte("add@/devices/x\x00ACTION=remove\x00"),
		"oversized":        append([]byte("add@/devices/x\x00K="), bytes.Repeat([]byte("v"), maxUeventSize)...),
	} {
		if _, err := ParseUevent(b); !errors.Is(err, ErrBadUevent) {
			t.Errorf("%s: err = %v, want ErrBadUevent", name, err)
		}
	}
}

func FuzzParseUevent(f *testing.F) {
	f.Add([]byte("add@/devices/x/block/sda\x00ACTION=add\x00SUBSYSTEM=block\x00"))
	f.Add([]byte("libudev\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := ParseUevent(b)
		if err != nil {
			if !errors.Is(err, ErrBadUevent) {
				t.Fatalf("error not ErrBadUevent: %v", err)
			}
			return
		}
		if u.Action == "" || !strings.HasPrefix(u.DevPath, "/") {
			t.Fatalf("accepted without action or absolute devpath: %+v", u)
		}
		if a, ok := u.Vars["ACTION"]; ok && a != u.Action {
			t.Fatalf("ACTION mismatch accepted: %+v", u)
		}
	})
}

// The real socket: binding to the kernel group needs no privilege. With no
// device changing, waits end by deadline or cancellation, named.
func TestNetlinkUeventsWaitEnds(t *testing.T) {
	n, err := OpenNetlinkUevents()
	if err != nil {
		t.Fatalf("netlink uevent socket: %v", err)
	}
	defer n.Close()
	never := func(Uevent) bool { return false }

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = n.WaitFor(ctx, "the test device", never)
	if !errors.Is(err, ErrWaitTimeout) || !strings.Contains(err.Error(), "the test device") {
		t.Fatalf("deadline: err = %v, want a named ErrWaitTimeout", err)
	}

	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { cancel2() }()
	if err := n.WaitFor(ctx2, "the test device", never); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: err = %v, want context.Canceled", err)
	}
}
