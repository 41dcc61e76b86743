package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"inert/storage/luks2"
)

// imageDevices opens image files in place of device nodes.
type imageDevices map[string]string

func (d imageDevices) OpenDevice(path string) (BlockDevice, uint64, error) {
	img, ok := d[path]
	if !ok {
		return nil, 0, os.ErrNotExist
	}
	return OSDevices{}.OpenDevice(img)
}

func TestOpenForService(t *testing.T) {
	fs := newFakeSysfs(t)
	fs.disk("vdb")
	fs.partition("vdb", "vdb1", ueventFor("vdb1", ZonePrimary))
	r := newRig(t, []byte(Marker))
	r.p.Devices = imageDevices{"/dev/vdb1": r.img}
	rec := DiscoverOptions{Known: DiskSet{"vdb": true}}.Record()
	var buf bytes.Buffer
	buf.WriteString(`{"boot_disk":"","known":["` + strings.Join(rec.Known, `","`) + `"]}`)
	disks, err := ParseDiskRecord(&buf)
	if err != nil {
		t.Fatal(err)
	}
	req := ServiceRequest{ZoneName: "zone-1", RingAddress: "ring-abc", Secret: []byte("zone secret")}
	st, err := r.p.OpenForService(context.Background(), fs.root, disks, r.spec, req)
	if err != nil {
		t.Fatal(err)
	}
	if !st.FormattedLUKS || st.Zone != "zone-1" || st.KeySource != "service" {
		t.Fatalf("state %+v", st)
	}
	// A second implementation of the contract's key, written out by hand:
	// cryptsetup must open the volume with it.
	var msg []byte
	msg = append(msg, "LapEE zone nonvolatile storage v1\x00zone-1\x00ring-abc\x00zone secret"...)
	want := sha256.Sum256(msg)
	kf := filepath.Join(t.TempDir(), "key")
	os.WriteFile(kf, want[:], 0o600)
	if out, err := exec.Command("cryptsetup", "open", "--test-passphrase", "--key-file", kf, r.img).CombinedOutput(); err != nil {
		t.Fatalf("cryptsetup refuses the contract's zone key: %v %s", err, out)
	}

	for _, tc := range []struct {
		name  string
		req   ServiceRequest
		disks DiscoverOptions
		want  error
	}{
		{"other ring address", ServiceRequest{ZoneName: "zone-1", RingAddress: "ring-xyz", Secret: []byte("zone secret")}, disks, luks2.ErrWrongKey},
		{"other secret", ServiceRequest{ZoneName: "zone-1", RingAddress: "ring-abc", Secret: []byte("guess")}, disks, luks2.ErrWrongKey},
		{"no secret", ServiceRequest{ZoneName: "zone-1", RingAddress: "ring-abc"}, disks, ErrServiceRequest},
		{"disk appeared after lockdown", req, DiscoverOptions{Known: DiskSet{"vda": true}}, ErrNoZone},
		{"zone on the boot disk", req, DiscoverOptions{BootDisk: "vdb", Known: DiskSet{"vdb": true}}, ErrNoZone},
		{"pinned name absent", ServiceRequest{ZoneName: "zone-1", PartName: "ZONE_other", Secret: []byte("x")}, disks, ErrNoZone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clear(r.m.mapped)
			before := r.digest(t)
			if _, err := r.p.OpenForService(context.Background(), fs.root, tc.disks, r.spec, tc.req); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if r.digest(t) != before || len(r.m.mapped) != 0 {
				t.Fatal("a refused request changed the volume or mapped it")
			}
		})
	}
}

func FuzzDiskRecord(f *testing.F) {
	f.Add([]byte(`{"boot_disk":"sda","known":["sda","vda"]}`))
	f.Add([]byte(`{"known":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		opts, err := ParseDiskRecord(bytes.NewReader(b))
		if err == nil && opts.Known == nil {
			t.Fatal("accepted a record without known disks")
		}
	})
}
