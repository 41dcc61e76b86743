package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"inert/boot/measure"
	"inert/storage"
)

// ZoneSpec is one zone volume of the manifest (CONTRACTS §3).
type ZoneSpec struct {
	// Partition is the GPT name to use (ZONE_PRIMARY or ZONE_<ID>). Empty:
	// select by RingAddress (the most specific ZONE_<prefix>, else the one
	// ZONE_PRIMARY).
	Partition   string `json:"partition,omitempty"`
	RingAddress string `json:"ring_address,omitempty"`
	// KeySource: "tpm" (sealed by the boot to PCRs, see storage.TPMKey),
	// "snp" (derived by the AMD secure processor from the VCEK with the
	// launch measurement, policy, SVN and TCB mixed in, see storage.SNPKey)
	// or "service" (the boot leaves it alone; the service opens it later
	// with `inert zone open`).
	KeySource string `json:"key_source"`
	// PCRs for the tpm source; storage.DefaultTPMPCRs (7, 11, 12) when empty.
	PCRs   []int  `json:"pcrs,omitempty"`
	Label  string `json:"label"`
	Mapper string `json:"mapper"`
	Mount  string `json:"mount"`
	// Required halts the boot when the zone cannot be opened; otherwise the
	// boot goes on without it and the status says why.
	Required bool `json:"required,omitempty"`
}

var (
	zoneMapperRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	zoneLabelRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,47}$`)
)

// mke2fsPath is where the manifest's binaries put mke2fs in the initramfs.
const mke2fsPath = "/usr/sbin/mke2fs"

func validateZones(zones []ZoneSpec) error {
	bad := func(i int, format string, a ...any) error {
		return fmt.Errorf("%w: zones[%d]: "+format, append([]any{ErrManifest, i}, a...)...)
	}
	mappers, mounts := map[string]bool{}, map[string]bool{}
	for i, z := range zones {
		if z.Partition != "" {
			if err := storage.ValidateZoneName(z.Partition); err != nil {
				return bad(i, "%v", err)
			}
		}
		switch z.KeySource {
		case "tpm":
			for _, p := range z.PCRs {
				if p < 0 || p > 23 || p == measure.PCRService {
					return bad(i, "PCR %d cannot hold a seal (0..23, never the service's PCR 15)", p)
				}
			}
		case "snp", "service":
			if len(z.PCRs) > 0 {
				return bad(i, "pcrs apply only to key_source tpm")
			}
		default:
			return bad(i, "key_source %q must be tpm, snp or service", z.KeySource)
		}
		if !zoneLabelRE.MatchString(z.Label) || !zoneMapperRE.MatchString(z.Mapper) {
			return bad(i, "label and mapper must be 1-47 / 1-64 of [A-Za-z0-9_.-]")
		}
		if !absClean(z.Mount) || z.Mount == "/" || strings.ContainsAny(z.RingAddress, "\x00\n") {
			return bad(i, "mount %q must be a clean absolute path below /", z.Mount)
		}
		if mappers[z.Mapper] || mounts[z.Mount] {
			return bad(i, "mapper %q or mount %q is used twice", z.Mapper, z.Mount)
		}
		mappers[z.Mapper], mounts[z.Mount] = true, true
	}
	return nil
}

// name is how status lines and zones.json name the zone.
func (z ZoneSpec) name() string {
	if z.Partition != "" {
		return z.Partition
	}
	if z.RingAddress != "" {
		return "zone for " + z.RingAddress
	}
	return storage.ZonePrimary
}

// zoneProvisioner opens or formats one zone; *storage.Provisioner is the
// real one, tests pass a fake.
type zoneProvisioner interface {
	Provision(ctx context.Context, part storage.Partition, spec storage.Spec, src storage.KeySource) (storage.State, error)
}

// snapshotDisks records the disks present before the USB lockdown (called
// first thing in the lockdown step, in every mode): a disk that appears
// later is never used as a zone. The record is also left in the run dir
// for `inert zone open`.
func (w *Worker) snapshotDisks() {
	w.disks, w.disksErr = storage.SnapshotDisks(w.Root)
	if w.disksErr != nil {
		return
	}
	opts := storage.DiscoverOptions{Known: w.disks}
	if w.esp != nil {
		opts.BootDisk = w.esp.Disk
	}
	if b, err := json.Marshal(opts.Record()); err == nil {
		_ = writePublic(w.path(filepath.Join(w.M.RunDir, storage.DiskRecordName)), append(b, '\n'))
	}
}

// storage measures the inert-storage phase (the PCR 11 value zone keys are
// sealed to), then opens or provisions every zone of the manifest, writes
// zones.json (evidence "zones") and reports refusals: a required zone halts,
// any other refusal degrades with a status line.
func (w *Worker) storage(ctx context.Context) error {
	if err := w.phase("inert-storage"); err != nil {
		return err
	}
	if len(w.M.Zones) == 0 {
		w.writeZones(nil)
		return Skip("no zones in the manifest")
	}
	states, refusals := w.openZones(ctx)
	w.writeZones(states)
	if len(refusals) == 0 {
		return nil
	}
	first := refusals[0]
	for _, r := range refusals {
		if r.required {
			return Security(fmt.Sprintf("Boot stopped: the required zone %s could not be opened (%s).", r.zone, sanitize(r.why)), r.err)
		}
	}
	return Environment(fmt.Sprintf("Zone %s was not opened (%s); continuing without it.", first.zone, sanitize(first.why)), first.err)
}

// zoneRefusal is a zone that was present but not opened.
type zoneRefusal struct {
	zone, why string
	required  bool
	err       error
}

// openZones runs each manifest zone; absent zones are recorded, not refused.
func (w *Worker) openZones(ctx context.Context) ([]storage.State, []zoneRefusal) {
	var states []storage.State
	var refusals []zoneRefusal
	refuse := func(z ZoneSpec, st storage.State, why string, err error) {
		st.Zone, st.Reason = z.name(), why
		states = append(states, st)
		refusals = append(refusals, zoneRefusal{z.name(), why, z.Required, err})
		w.info("storage", "zone "+z.name()+" refused: "+why)
	}
	if w.disksErr != nil || w.disks == nil {
		err := w.disksErr
		if err == nil {
			err = storage.ErrNoDiskSnapshot
		}
		for _, z := range w.M.Zones {
			refuse(z, storage.State{}, "no disk snapshot from before the USB lockdown", err)
		}
		return states, refusals
	}
	opts := storage.DiscoverOptions{Known: w.disks}
	if w.esp != nil {
		opts.BootDisk = w.esp.Disk
	}
	found, err := storage.Discover(w.Root, opts)
	if err != nil {
		for _, z := range w.M.Zones {
			refuse(z, storage.State{}, "block devices unreadable", err)
		}
		return states, refusals
	}
	for _, r := range found.Refused {
		states = append(states, storage.State{Partition: r.Partition.DevPath, PartName: r.Partition.PartName, Reason: r.Err.Error()})
		w.info("storage", fmt.Sprintf("partition %s (%s) ignored: %v", r.Partition.Name, r.Partition.PartName, r.Err))
	}
	for _, z := range w.M.Zones {
		part, err := pickZone(found.Zones, z)
		switch {
		case errors.Is(err, storage.ErrNoZone):
			st := storage.State{Zone: z.name(), Reason: err.Error()}
			states = append(states, st)
			if z.Required {
				refusals = append(refusals, zoneRefusal{z.name(), "no such partition", true, err})
			}
			w.info("storage", "zone "+z.name()+": no partition; not used")
			continue
		case err != nil:
			refuse(z, storage.State{}, "ambiguous partitions", err)
			continue
		}
		if z.KeySource == "service" {
			states = append(states, storage.State{Zone: z.name(), Partition: part.DevPath, PartName: part.PartName,
				KeySource: z.KeySource, Reason: "left to the service (inert zone open)"})
			continue
		}
		src, why, err := w.zoneKey(z)
		if err != nil {
			refuse(z, storage.State{Partition: part.DevPath, PartName: part.PartName, KeySource: z.KeySource}, why, err)
			continue
		}
		w.Emit(Event{Step: "storage", State: StateInfo, Message: "zone " + z.name() + " on " + part.Name,
			Data: map[string]string{"zone": z.name(), "partition": part.Name}})
		st, err := w.zoneProvisionerFor(z).Provision(ctx, part, storage.Spec{Label: z.Label, Mapper: z.Mapper, Mount: w.path(z.Mount)}, src)
		st.Zone = z.name()
		if err != nil {
			refuse(z, st, zoneReason(err), err)
			continue
		}
		st.Mount = z.Mount
		states = append(states, st)
		if st.VolumeIDError != "" {
			w.info("storage", "zone "+z.name()+": "+st.VolumeIDError)
		}
		w.Emit(Event{Step: "storage", State: StateInfo, Message: "zone " + z.name() + " mounted at " + z.Mount,
			Data: map[string]string{"zone": z.name(), "volume_id": st.VolumeID,
				"formatted_luks": fmt.Sprint(st.FormattedLUKS), "formatted_filesystem": fmt.Sprint(st.FormattedFilesystem)}})
	}
	return states, refusals
}

// pickZone applies the manifest's choice: an exact GPT name, or selection
// by ring address.
func pickZone(parts []storage.Partition, z ZoneSpec) (storage.Partition, error) {
	if z.Partition == "" {
		return storage.Select(parts, z.RingAddress)
	}
	var match []storage.Partition
	for _, p := range parts {
		if p.PartName == z.Partition {
			match = append(match, p)
		}
	}
	switch len(match) {
	case 0:
		return storage.Partition{}, fmt.Errorf("%w named %s", storage.ErrNoZone, z.Partition)
	case 1:
		return match[0], nil
	}
	return storage.Partition{}, fmt.Errorf("%w: %d partitions named %s", storage.ErrAmbiguousZone, len(match), z.Partition)
}

// zoneReason is the short, non-secret reason a person reads.
func zoneReason(err error) string {
	switch {
	case errors.Is(err, storage.ErrPCRMismatch):
		return "the TPM no longer unseals its key: boot image, Secure Boot or operator config changed"
	case errors.Is(err, storage.ErrTPMToken):
		return "its TPM token is unusable"
	case errors.Is(err, storage.ErrSNPMismatch):
		return "SEV-SNP no longer derives its key: the launch measurement or policy changed"
	case errors.Is(err, storage.ErrSNPToken):
		return "its SEV-SNP token is unusable"
	case errors.Is(err, storage.ErrSNPUnavailable):
		return "the SEV-SNP guest device did not derive its key"
	case errors.Is(err, storage.ErrLeftUntouched):
		return "no LUKS header and no provisioning marker; left untouched"
	case errors.Is(err, storage.ErrHeaderRefused):
		return "its LUKS2 header was refused"
	case errors.Is(err, storage.ErrNoFilesystem):
		return "the volume has no filesystem and is not fresh"
	case errors.Is(err, storage.ErrKeySource):
		return "its key could not be recovered"
	}
	return "open failed"
}

// snpGuestDevice is the only SNP interface that derives keys (configfs-tsm
// only makes reports).
const snpGuestDevice = "/dev/sev-guest"

// zoneKey builds the key source of a zone, or says (status words) why the
// machine cannot provide it.
func (w *Worker) zoneKey(z ZoneSpec) (storage.KeySource, string, error) {
	switch z.KeySource {
	case "snp":
		if !w.tee.SNP {
			return nil, "no SEV-SNP guest to derive its key", fmt.Errorf("%w: zone %s uses the snp key source and this is not an SEV-SNP guest", storage.ErrKeySource, z.name())
		}
		return storage.SNPKey{Open: storage.DeviceSNP(w.path(snpGuestDevice))}, "", nil
	}
	if !w.tee.TPM {
		return nil, "no TPM to seal or unseal its key", fmt.Errorf("%w: zone %s uses the tpm key source and there is no TPM", storage.ErrKeySource, z.name())
	}
	return storage.TPMKey{Open: storage.DeviceTPM(w.path(measure.DevicePath)), PCRs: z.PCRs}, "", nil
}

func (w *Worker) zoneProvisionerFor(z ZoneSpec) zoneProvisioner {
	if w.zones != nil {
		return w.zones
	}
	return &storage.Provisioner{
		Devices: storage.OSDevices{},
		Mapper:  storage.DevMapper{DevDir: w.path("/dev")},
		Mounter: storage.SysMounter{},
		FS:      storage.Ext4{Mke2fs: w.path(mke2fsPath)},
		Progress: func(word string) {
			w.Emit(Event{Step: "storage", State: StateInfo, Message: "zone " + z.name() + ": " + word,
				Data: map[string]string{"zone": z.name(), "progress": word}})
		},
	}
}

// writeZones writes <run>/zones.json, which evidence serves as "zones".
func (w *Worker) writeZones(states []storage.State) {
	if states == nil {
		states = []storage.State{}
	}
	b, err := json.MarshalIndent(states, "", "  ")
	if err != nil {
		return
	}
	if err := writePublic(w.path(path.Join(w.M.RunDir, "zones.json")), append(b, '\n')); err != nil {
		w.info("storage", "zones.json could not be written: "+err.Error())
	}
}

// ErrNoServiceZone: the manifest has no zone with key_source "service".
var ErrNoServiceZone = errors.New("the manifest has no service-opened zone")

// OpenServiceZone is `inert zone open` (hyperbeam's "service" key source):
// it opens or provisions the manifest's service zone for name and ring
// address with the CONTRACTS §3 zone key derived from secret (which the
// caller clears), using the disks the boot recorded before the USB
// lockdown, and records the outcome in zones.json. root is "/" on the
// appliance.
func OpenServiceZone(ctx context.Context, m *Manifest, root, name, ringAddress string, secret []byte) (storage.State, error) {
	var z *ZoneSpec
	for i := range m.Zones {
		if m.Zones[i].KeySource == "service" {
			z = &m.Zones[i]
			break
		}
	}
	if z == nil {
		return storage.State{}, ErrNoServiceZone
	}
	at := func(p string) string { return filepath.Join(root, p) }
	disks, err := storage.ReadDiskRecord(at(path.Join(m.RunDir, storage.DiskRecordName)))
	if err != nil {
		return storage.State{}, err
	}
	p := &storage.Provisioner{
		Devices: storage.OSDevices{},
		Mapper:  storage.DevMapper{DevDir: at("/dev")},
		Mounter: storage.SysMounter{},
		FS:      storage.Ext4{Mke2fs: at(mke2fsPath)},
	}
	st, err := p.OpenForService(ctx, root, disks, storage.Spec{Label: z.Label, Mapper: z.Mapper, Mount: at(z.Mount)},
		storage.ServiceRequest{ZoneName: name, RingAddress: ringAddress, PartName: z.Partition, Secret: secret})
	if err == nil {
		st.Mount = z.Mount
	}
	recordServiceZone(at(path.Join(m.RunDir, "zones.json")), st)
	return st, err
}

// recordServiceZone replaces the boot's entry for the same partition in
// zones.json (best effort: evidence, not state).
func recordServiceZone(file string, st storage.State) {
	var states []storage.State
	if b, err := os.ReadFile(file); err == nil {
		_ = json.Unmarshal(b, &states)
	}
	out := []storage.State{st}
	for _, s := range states {
		if st.Partition == "" || s.Partition != st.Partition {
			out = append(out, s)
		}
	}
	if b, err := json.MarshalIndent(out, "", "  "); err == nil {
		_ = writePublic(file, append(b, '\n'))
	}
}
