package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"inert/appliance/profiles"
	"inert/boot"
	"inert/storage"
)

// recordingZones is a fake provisioner: it records calls and returns err.
type recordingZones struct {
	calls []string
	err   error
}

func (r *recordingZones) Provision(_ context.Context, part storage.Partition, spec storage.Spec, src storage.KeySource) (storage.State, error) {
	r.calls = append(r.calls, part.Name+" "+spec.Mapper+" "+src.Name())
	st := storage.State{Partition: part.DevPath, PartName: part.PartName, KeySource: src.Name()}
	if r.err != nil {
		st.Reason = r.err.Error()
		return st, r.err
	}
	st.Mount, st.FormattedLUKS, st.VolumeID = spec.Mount, true, "uuid"
	return st, nil
}

// zoneRoot is a fake root whose sysfs holds disk -> partition (GPT name).
func zoneRoot(t *testing.T, parts map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"sys/class/block", "sys/block"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	for part, name := range parts {
		disk := strings.TrimRight(part, "0123456789")
		dev := filepath.Join(root, "sys/devices/virtual/block", disk)
		os.MkdirAll(filepath.Join(dev, part), 0o755)
		os.WriteFile(filepath.Join(dev, "uevent"), []byte("DEVNAME="+disk+"\n"), 0o644)
		os.WriteFile(filepath.Join(dev, part, "uevent"), []byte("DEVNAME="+part+"\nPARTNAME="+name+"\n"), 0o644)
		os.WriteFile(filepath.Join(dev, part, "size"), []byte("131072\n"), 0o644)
		os.WriteFile(filepath.Join(dev, part, "partition"), []byte("1\n"), 0o644)
		os.Symlink(dev, filepath.Join(root, "sys/block", disk))
		os.Symlink(filepath.Join(dev, part), filepath.Join(root, "sys/class/block", part))
	}
	return root
}

func TestStorageStep(t *testing.T) {
	b, err := profiles.Manifest("demo")
	if err != nil {
		t.Fatal(err)
	}
	pcrRefused := errors.Join(storage.ErrKeySource, storage.ErrPCRMismatch)
	for _, tc := range []struct {
		name      string
		parts     map[string]string
		edit      func(w *Worker)
		provErr   error
		wantClass Class // "" = step succeeds
		wantCalls int
		status    string
		// wantSource is the key source the provisioner must get ("tpm"
		// when empty).
		wantSource string
	}{
		{name: "zone opened", parts: map[string]string{"vda1": "ZONE_PRIMARY"}, wantCalls: 1},
		{name: "no zone partition", parts: map[string]string{"vda1": "Linux"}},
		{name: "unseal refused", parts: map[string]string{"vda1": "ZONE_PRIMARY"}, provErr: pcrRefused,
			wantClass: ClassEnvironment, wantCalls: 1, status: "TPM no longer unseals"},
		{name: "required zone refused", parts: map[string]string{"vda1": "ZONE_PRIMARY"}, provErr: pcrRefused,
			edit: func(w *Worker) { w.M.Zones[0].Required = true }, wantClass: ClassSecurity, wantCalls: 1, status: "Boot stopped"},
		{name: "required zone absent", parts: map[string]string{},
			edit: func(w *Worker) { w.M.Zones[0].Required = true }, wantClass: ClassSecurity, status: "Boot stopped"},
		{name: "no TPM", parts: map[string]string{"vda1": "ZONE_PRIMARY"},
			edit: func(w *Worker) { w.tee.TPM = false }, wantClass: ClassEnvironment, status: "no TPM"},
		{name: "no pre-lockdown snapshot", parts: map[string]string{"vda1": "ZONE_PRIMARY"},
			edit: func(w *Worker) { w.disks = nil }, wantClass: ClassEnvironment, status: "no disk snapshot"},
		{name: "late disk", parts: map[string]string{"vda1": "ZONE_PRIMARY"},
			edit: func(w *Worker) { delete(w.disks, "vda") }},
		{name: "two ZONE_PRIMARY", parts: map[string]string{"vda1": "ZONE_PRIMARY", "vdb1": "ZONE_PRIMARY"},
			wantClass: ClassEnvironment, status: "ambiguous"},
		{name: "zone on the boot disk", parts: map[string]string{"sda1": "ZONE_PRIMARY"},
			edit: func(w *Worker) { w.esp = &boot.ESP{Disk: "sda"} }},
		{name: "service key source", parts: map[string]string{"vda1": "ZONE_PRIMARY"},
			edit: func(w *Worker) { w.M.Zones[0].KeySource = "service" }},
		{name: "snp key source", parts: map[string]string{"vda1": "ZONE_PRIMARY"},
			edit: func(w *Worker) { w.M.Zones[0].KeySource = "snp"; w.tee.SNP = true }, wantCalls: 1, wantSource: "snp"},
		{name: "snp key source without SEV-SNP", parts: map[string]string{"vda1": "ZONE_PRIMARY"},
			edit: func(w *Worker) { w.M.Zones[0].KeySource = "snp" }, wantClass: ClassEnvironment, status: "no SEV-SNP"},
		{name: "snp launch changed", parts: map[string]string{"vda1": "ZONE_PRIMARY"},
			provErr: errors.Join(storage.ErrKeySource, storage.ErrSNPMismatch),
			edit:    func(w *Worker) { w.M.Zones[0].KeySource = "snp"; w.tee.SNP = true }, wantClass: ClassEnvironment, wantCalls: 1,
			status: "launch measurement or policy changed", wantSource: "snp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseManifest(b)
			if err != nil {
				t.Fatal(err)
			}
			var evs []Event
			w := NewWorker(m, boot.Env{}, zoneRoot(t, tc.parts), func(e Event) { evs = append(evs, e) })
			os.MkdirAll(w.path(m.RunDir), 0o755)
			w.tee.TPM = true
			fake := &recordingZones{err: tc.provErr}
			w.zones = fake
			w.snapshotDisks()
			if tc.edit != nil {
				tc.edit(w)
			}
			err = w.storage(context.Background())
			switch {
			case tc.wantClass == "" && err != nil:
				t.Fatalf("step failed: %v", err)
			case tc.wantClass != "" && ClassOf(err) != tc.wantClass:
				t.Fatalf("got %v (class %s), want class %s", err, ClassOf(err), tc.wantClass)
			case tc.wantClass != "" && !strings.Contains(StatusOf(err, ""), tc.status):
				t.Fatalf("status %q lacks %q", StatusOf(err, ""), tc.status)
			}
			if len(fake.calls) != tc.wantCalls {
				t.Fatalf("provisioner calls %v, want %d", fake.calls, tc.wantCalls)
			}
			wantSource := tc.wantSource
			if wantSource == "" {
				wantSource = "tpm"
			}
			for _, c := range fake.calls {
				if !strings.HasSuffix(c, " "+wantSource) {
					t.Errorf("provisioner call %q, want key source %s", c, wantSource)
				}
			}
			raw, err := os.ReadFile(w.path(filepath.Join(m.RunDir, "zones.json")))
			if err != nil {
				t.Fatal(err)
			}
			var states []storage.State
			if err := json.Unmarshal(raw, &states); err != nil {
				t.Fatal(err)
			}
			var zone *storage.State
			for i := range states {
				if states[i].Zone == storage.ZonePrimary {
					zone = &states[i]
				}
			}
			if zone == nil {
				t.Fatalf("zones.json has no entry for the zone: %s", raw)
			}
			if opened := tc.wantClass == "" && tc.wantCalls == 1; opened != (zone.Mount == "/var/lib/inert/zone" && zone.Reason == "") {
				t.Fatalf("zones.json entry %+v", *zone)
			}
		})
	}
}

func TestManifestZones(t *testing.T) {
	good, _ := profiles.Manifest("demo")
	for name, repl := range map[string][2]string{
		"bad partition name": {`"partition": "ZONE_PRIMARY"`, `"partition": "ZONE_a.b"`},
		"unknown key source": {`"key_source": "tpm"`, `"key_source": "tpm2"`},
		"snp with PCRs":      {`"key_source": "tpm"`, `"key_source": "snp", "pcrs": [7]`},
		"relative mount":     {`"mount": "/var/lib/inert/zone"`, `"mount": "zone"`},
		"service PCR 15":     {`"key_source": "tpm"`, `"key_source": "tpm", "pcrs": [7, 15]`},
		"mapper with slash":  {`"mapper": "inert-zone"`, `"mapper": "../x"`},
	} {
		t.Run(name, func(t *testing.T) {
			in := strings.Replace(string(good), repl[0], repl[1], 1)
			if in == string(good) {
				t.Fatal("mutation did not apply")
			}
			if _, err := ParseManifest([]byte(in)); !errors.Is(err, ErrManifest) {
				t.Fatalf("got %v, want ErrManifest", err)
			}
		})
	}
}
