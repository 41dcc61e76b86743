package storage

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

func part(name, partName string) Partition {
	return Partition{Name: name, Disk: strings.TrimRight(name, "0123456789"), PartName: partName, DevPath: "/dev/" + name}
}

func TestSelect(t *testing.T) {
	const ring = "abcDEF_-123"
	for _, tc := range []struct {
		name  string
		parts []Partition
		ring  string
		want  string // kernel name of the chosen partition
		err   error
	}{
		{"primary only", []Partition{part("vdb1", "ZONE_PRIMARY")}, ring, "vdb1", nil},
		{"prefix beats primary", []Partition{part("vdb1", "ZONE_PRIMARY"), part("vdc1", "ZONE_abc")}, ring, "vdc1", nil},
		{"longest prefix wins", []Partition{part("vdb1", "ZONE_ab"), part("vdc1", "ZONE_abcDEF"), part("vdd1", "ZONE_a")}, ring, "vdc1", nil},
		{"non-matching prefix falls back", []Partition{part("vdb1", "ZONE_PRIMARY"), part("vdc1", "ZONE_xyz")}, ring, "vdb1", nil},
		{"prefix is case-sensitive", []Partition{part("vdb1", "ZONE_PRIMARY"), part("vdc1", "ZONE_ABC")}, ring, "vdb1", nil},
		{"whole address as prefix", []Partition{part("vdc1", "ZONE_"+ring)}, ring, "vdc1", nil},
		{"equal prefixes", []Partition{part("vdb1", "ZONE_abc"), part("vdc1", "ZONE_abc"), part("vdd1", "ZONE_PRIMARY")}, ring, "", ErrAmbiguousZone},
		{"two primaries", []Partition{part("vdb1", "ZONE_PRIMARY"), part("vdc1", "ZONE_PRIMARY")}, ring, "", ErrAmbiguousZone},
		{"nothing", []Partition{part("vdb1", "ZONE_xyz")}, ring, "", ErrNoZone},
		{"no ring address uses primary", []Partition{part("vdb1", "ZONE_PRIMARY"), part("vdc1", "ZONE_a")}, "", "vdb1", nil},
		{"invalid names never chosen", []Partition{part("vdb1", "ZONE_abc.d"), part("vdc1", "ZONE_")}, "abc.d", "", ErrNoZone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Select(tc.parts, tc.ring)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if got.Name != tc.want {
				t.Fatalf("chose %q, want %q", got.Name, tc.want)
			}
		})
	}
}

func TestValidateZoneName(t *testing.T) {
	for name, ok := range map[string]bool{
		"ZONE_PRIMARY": true, "ZONE_a": true, "ZONE_" + strings.Repeat("x", 26): true, "ZONE_a-b_C9": true,
		"ZONE_": false, "ZONE_" + strings.Repeat("x", 27): false, "ZONE_a b": false, "ZONE_ä": false,
		"zone_a": false, "ESP": false, "ZONE_a/b": false,
	} {
		if err := ValidateZoneName(name); (err == nil) != ok {
			t.Errorf("%q: %v", name, err)
		}
	}
}

// TestZoneKeyMatchesShell computes the expected key with printf | sha256sum.
func TestZoneKeyMatchesShell(t *testing.T) {
	for _, tc := range []struct{ zone, ring, secret string }{
		{"ZONE_PRIMARY", "4Zr7mw-lrEurp2_0HPHVp8uNVKGZ3Rk7a6mPR1ASJbc", "zone secret"},
		{"ZONE_abc", "", "s\n2"},
	} {
		cmd := exec.Command("bash", "-c", `printf '%s\0%s\0%s\0%s' "$@" | sha256sum`, "zonekey",
			"LapEE zone nonvolatile storage v1", tc.zone, tc.ring, tc.secret)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		want, err := hex.DecodeString(strings.Fields(string(out))[0])
		if err != nil {
			t.Fatal(err)
		}
		if got := ZoneKey(tc.zone, tc.ring, []byte(tc.secret)); !bytes.Equal(got, want) {
			t.Errorf("%+v: key %x, sha256sum says %x", tc, got, want)
		}
	}
}

func TestDecide(t *testing.T) {
	luks := append([]byte("LUKS\xba\xbe\x00\x02"), make([]byte, 4088)...)
	marked := append([]byte(Marker), make([]byte, 4096-len(Marker))...)
	almost := append([]byte(Marker[:len(Marker)-1]+"\r"), make([]byte, 4096-len(Marker))...)
	for _, tc := range []struct {
		name  string
		first []byte
		want  Action
	}{
		{"LUKS", luks, Open},
		{"marker", marked, Format},
		{"zeros", make([]byte, 4096), Leave},
		{"marker without newline", almost, Leave},
		{"marker not at offset 0", append([]byte{0}, marked[:4095]...), Leave},
		{"tiny partition", []byte("LapEE"), Leave},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Probe(bytes.NewReader(tc.first))
			if err != nil {
				t.Fatal(err)
			}
			if d.Action != tc.want || d.Reason == "" {
				t.Fatalf("got %v (%q), want %v", d.Action, d.Reason, tc.want)
			}
		})
	}
	if len(Marker) != 41 {
		t.Fatalf("marker is %d bytes, the contract says 41", len(Marker))
	}
}
