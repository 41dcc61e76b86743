//go:build vmtest

package storage

// The privileged rung (scripts/vmtest.sh, group "storage"): these run as
// root in a QEMU guest on the Debian kernel, with device-mapper, dm-crypt,
// ext4, a swtpm at /dev/tpmrm0, two blank virtio disks (vda, vdb), and the
// host's cryptsetup and mke2fs. cryptsetup is the independent judge: what
// inert formats and maps, cryptsetup opens and reads back; what cryptsetup
// formats, inert opens.

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anatol/devmapper.go"
	"golang.org/x/sys/unix"

	"inert/storage/luks2"
)

// The guest's disks (scripts/vmtest.sh: two blank 256 MiB images).
const (
	vmDiskA = "/dev/vda"
	vmDiskB = "/dev/vdb"
)

// vmProvisioner is the production wiring, as the worker builds it.
func vmProvisioner() *Provisioner {
	return &Provisioner{
		Devices: OSDevices{},
		Mapper:  DevMapper{DevDir: "/dev"},
		Mounter: SysMounter{},
		FS:      Ext4{Mke2fs: "/usr/sbin/mke2fs"},
	}
}

// markedDisk wipes the start of dev (a previous test's header) and writes
// the provisioning marker; the cleanup unmounts and unmaps whatever the
// test left, so one failure does not cascade.
func markedDisk(t *testing.T, dev string, mounts, mappers []string) {
	t.Helper()
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("open %s: %v (is the storage group's disk attached?)", dev, err)
	}
	defer f.Close()
	size, _ := f.Seek(0, io.SeekEnd)
	if size < 64<<20 {
		t.Fatalf("%s has %d bytes, want the 256 MiB test disk", dev, size)
	}
	zero := make([]byte, 16<<20)
	copy(zero, Marker)
	if _, err := f.WriteAt(zero, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, m := range mounts {
			_ = unix.Unmount(m, unix.MNT_DETACH)
		}
		for _, n := range mappers {
			_ = devmapper.Remove(n)
			_ = os.Remove("/dev/mapper/" + n)
		}
	})
}

// cryptsetup runs the reference tool. libdevmapper makes the /dev/mapper
// nodes itself: there is no udev in the guest.
func cryptsetup(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("/usr/sbin/cryptsetup", args...)
	cmd.Env = append(os.Environ(), "DM_DISABLE_UDEV=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cryptsetup %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// keyFile writes a test key where cryptsetup can read it (tmpfs; the key
// protects nothing but this disposable guest).
func keyFile(t *testing.T, key []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// putData writes 1 MiB of random data into dir and returns its sha256.
func putData(t *testing.T, dir string) [32]byte {
	t.Helper()
	data := randomBytes(t, 1<<20)
	f, err := os.Create(filepath.Join(dir, "data.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return sha256.Sum256(data)
}

func dataSum(t *testing.T, dir string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "data.bin"))
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	return sha256.Sum256(b)
}

// mountOf returns the filesystem type and per-mount options of the mount
// at target, from the kernel's /proc/self/mountinfo.
func mountOf(t *testing.T, target string) (fstype string, opts []string) {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if len(fields) < 6 || sep < 0 || sep+1 >= len(fields) || fields[4] != target {
			continue
		}
		fstype, opts = fields[sep+1], strings.Split(fields[5], ",")
	}
	return fstype, opts
}

// statusOf parses `cryptsetup status NAME`, which reads the kernel's dm
// table, whoever loaded it.
func statusOf(t *testing.T, name string) map[string]string {
	t.Helper()
	out := cryptsetup(t, "status", name)
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

// TestVMInertVolumeOpensWithCryptsetup: inert formats (512-bit key, PBKDF2
// keyslot), maps through DevMapper, makes ext4, mounts; the service's data
// is written and the volume closed; then cryptsetup opens the same volume
// with the same key, its table agrees with inert's, and the data reads
// back. A second inert open reopens without reformatting.
func TestVMInertVolumeOpensWithCryptsetup(t *testing.T) {
	const mapper, csName = "vmtest-inert", "vmtest-inert-cs"
	mnt, csMnt := "/tmp/vmtest-inert", "/tmp/vmtest-inert-cs"
	markedDisk(t, vmDiskA, []string{mnt, csMnt}, []string{mapper, csName})
	key := randomBytes(t, 32)
	src := StaticKey{Source: "service", Key: key}
	part := Partition{Name: "vda", Disk: "vda", PartName: ZonePrimary, DevPath: vmDiskA}
	spec := Spec{Label: "lapee-nonvolatile", Mapper: mapper, Mount: mnt}
	p := vmProvisioner()
	var words []string
	p.Progress = func(w string) { words = append(words, w) }

	st, err := p.Provision(context.Background(), part, spec, src)
	if err != nil {
		t.Fatalf("provision: %v (state %+v)", err, st)
	}
	wantWords := []string{ProgressFormatting, ProgressFormatted, ProgressMkfs, ProgressMkfsDone, ProgressMounted, ProgressVolumeID, ProgressFreshClear}
	if !slices.Equal(words, wantWords) {
		t.Errorf("progress %v, want %v", words, wantWords)
	}
	if !st.FormattedLUKS || !st.FormattedFilesystem || st.Mapper != "/dev/mapper/"+mapper || st.Mount != mnt {
		t.Fatalf("state %+v", st)
	}
	fstype, opts := mountOf(t, mnt)
	for _, o := range []string{"rw", "noatime", "nodev", "nosuid", "noexec"} {
		if !slices.Contains(opts, o) {
			t.Errorf("mount options %v lack %s", opts, o)
		}
	}
	if fstype != "ext4" {
		t.Errorf("mounted %q, want ext4", fstype)
	}
	uuid := strings.TrimSpace(cryptsetup(t, "luksUUID", vmDiskA))
	if st.VolumeID != uuid || st.VolumeIDError != "" {
		t.Errorf("volume-id %q (%s), cryptsetup says %s", st.VolumeID, st.VolumeIDError, uuid)
	}
	inertTable := statusOf(t, mapper)
	sum := putData(t, mnt)

	if err := p.Mounter.Unmount(mnt); err != nil {
		t.Fatal(err)
	}
	if err := p.Mapper.Unmap(mapper); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/dev/mapper/" + mapper); !os.IsNotExist(err) {
		t.Errorf("mapper node still there after Unmap: %v", err)
	}
	if _, err := devmapper.InfoByName(mapper); err == nil {
		t.Error("dm device still exists after Unmap")
	}

	// The reference tool opens inert's volume with the same key.
	kf := keyFile(t, key)
	cryptsetup(t, "open", "--readonly", "--key-file", kf, vmDiskA, csName)
	csTable := statusOf(t, csName)
	// "key location" differs on purpose: cryptsetup hands dm-crypt the key
	// through the kernel keyring, inert in the table (as luks.go does).
	for _, k := range []string{"type", "cipher", "keysize", "device", "sector size", "offset", "size"} {
		if inertTable[k] != csTable[k] {
			t.Errorf("dm table %s: inert %q, cryptsetup %q", k, inertTable[k], csTable[k])
		}
	}
	if csTable["cipher"] != luks2.CipherXTS || csTable["keysize"] != "512 bits" || csTable["type"] != "LUKS2" {
		t.Errorf("cryptsetup status of inert's volume: %v", csTable)
	}
	if err := os.MkdirAll(csMnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("/dev/mapper/"+csName, csMnt, "ext4", unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("mount cryptsetup's mapping: %v", err)
	}
	if dataSum(t, csMnt) != sum {
		t.Error("cryptsetup's mapping reads other data than inert's wrote")
	}
	if id, err := ReadVolumeID(csMnt, uuid); err != nil || id.KeyBits != 512 || id.KeySource != "service" {
		t.Errorf("volume-id through cryptsetup: %+v %v", id, err)
	}
	if err := unix.Unmount(csMnt, 0); err != nil {
		t.Fatal(err)
	}
	cryptsetup(t, "close", csName)

	// Reboot: inert reopens, never reformats, the data is there.
	words = nil
	st, err = p.Provision(context.Background(), part, spec, src)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if st.FormattedLUKS || st.FormattedFilesystem || st.VolumeID != uuid || !slices.Equal(words, []string{ProgressMounted}) {
		t.Errorf("reopen state %+v progress %v", st, words)
	}
	if dataSum(t, mnt) != sum {
		t.Error("data lost across the reopen")
	}
	if err := p.Mounter.Unmount(mnt); err != nil {
		t.Fatal(err)
	}
	if err := p.Mapper.Unmap(mapper); err != nil {
		t.Fatal(err)
	}
}

// TestVMCryptsetupVolumeOpensWithInert: a volume cryptsetup formats the
// way PermawebOS does (LUKS2, aes-xts-plain64 with a 256-bit key, argon2id)
// and fills through its own mapping opens with inert's path, reads the
// same data, and its header is not written.
func TestVMCryptsetupVolumeOpensWithInert(t *testing.T) {
	const mapper, csName = "vmtest-from-cs", "vmtest-cs-made"
	mnt, csMnt := "/tmp/vmtest-from-cs", "/tmp/vmtest-cs-made"
	markedDisk(t, vmDiskB, []string{mnt, csMnt}, []string{mapper, csName})
	key := randomBytes(t, 32)
	kf := keyFile(t, key)
	cryptsetup(t, "luksFormat", "--batch-mode", "--type", "luks2", "--cipher", luks2.CipherXTS, "--key-size", "256",
		"--pbkdf", "argon2id", "--pbkdf-memory", "65536", "--pbkdf-force-iterations", "4",
		"--label", "lapee-nonvolatile", "--key-file", kf, vmDiskB)
	cryptsetup(t, "open", "--key-file", kf, vmDiskB, csName)
	if out, err := exec.Command("/usr/sbin/mke2fs", "-q", "-t", "ext4", "/dev/mapper/"+csName).CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	if err := os.MkdirAll(csMnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("/dev/mapper/"+csName, csMnt, "ext4", 0, ""); err != nil {
		t.Fatal(err)
	}
	sum := putData(t, csMnt)
	if err := unix.Unmount(csMnt, 0); err != nil {
		t.Fatal(err)
	}
	csTable := statusOf(t, csName)
	cryptsetup(t, "close", csName)
	header := headerSum(t, vmDiskB)

	p := vmProvisioner()
	st, err := p.Provision(context.Background(), Partition{Name: "vdb", Disk: "vdb", PartName: ZonePrimary, DevPath: vmDiskB},
		Spec{Label: "lapee-nonvolatile", Mapper: mapper, Mount: mnt}, StaticKey{Source: "service", Key: key})
	if err != nil {
		t.Fatalf("inert cannot open cryptsetup's volume: %v (state %+v)", err, st)
	}
	if st.FormattedLUKS || st.FormattedFilesystem || st.Mount != mnt {
		t.Errorf("state %+v", st)
	}
	// No volume-id file: opened all the same, and the evidence says why.
	if st.VolumeID != "" || !strings.Contains(st.VolumeIDError, ErrVolumeID.Error()) {
		t.Errorf("volume-id %q error %q on a volume inert did not make", st.VolumeID, st.VolumeIDError)
	}
	inertTable := statusOf(t, mapper)
	for _, k := range []string{"cipher", "keysize", "offset", "size", "sector size"} {
		if inertTable[k] != csTable[k] {
			t.Errorf("dm table %s: inert %q, cryptsetup %q", k, inertTable[k], csTable[k])
		}
	}
	if inertTable["keysize"] != "256 bits" {
		t.Errorf("inert mapped keysize %q, want 256 bits", inertTable["keysize"])
	}
	if dataSum(t, mnt) != sum {
		t.Error("inert's mapping reads other data than cryptsetup's wrote")
	}
	if err := p.Mounter.Unmount(mnt); err != nil {
		t.Fatal(err)
	}
	if err := p.Mapper.Unmap(mapper); err != nil {
		t.Fatal(err)
	}
	if headerSum(t, vmDiskB) != header {
		t.Error("opening an existing volume wrote its LUKS header area")
	}
}

// headerSum hashes the first 16 MiB (both LUKS2 headers and the keyslots
// area of cryptsetup's default layout, which is also inert's).
func headerSum(t *testing.T, dev string) [32]byte {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(h, f, 16<<20); err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// TestVMUnlockBenchmark is the benchmark: a tpm-sealed volume is
// unlocked and mapped by inert, and the same volume (with a second keyslot
// cryptsetup adds at its default argon2id cost, calibrated in this VM) by
// `cryptsetup open`. It prints a BENCH line; timing never fails the test.
func TestVMUnlockBenchmark(t *testing.T) {
	const mapper, csName = "vmtest-bench", "vmtest-bench-cs"
	mnt := "/tmp/vmtest-bench"
	markedDisk(t, vmDiskA, []string{mnt}, []string{mapper, csName})
	if _, err := os.Stat("/dev/tpmrm0"); err != nil {
		t.Fatalf("no TPM in the guest (the storage group runs with -tpm): %v", err)
	}
	src := TPMKey{Open: DeviceTPM("/dev/tpmrm0")}
	part := Partition{Name: "vda", Disk: "vda", PartName: ZonePrimary, DevPath: vmDiskA}
	spec := Spec{Label: "lapee-nonvolatile", Mapper: mapper, Mount: mnt}
	p := vmProvisioner()
	ctx := context.Background()
	st, err := p.Provision(ctx, part, spec, src)
	if err != nil || st.KeySource != "tpm" || !st.FormattedLUKS {
		t.Fatalf("provision with the TPM: %v (state %+v)", err, st)
	}
	_ = p.Mounter.Unmount(mnt)
	if err := p.Mapper.Unmap(mapper); err != nil {
		t.Fatal(err)
	}

	// A person's passphrase in keyslot 1 at cryptsetup's defaults.
	dev, size, err := p.Devices.OpenDevice(vmDiskA)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	snap, err := p.readChecked(dev, size)
	if err != nil {
		t.Fatal(err)
	}
	tpmPass, err := src.Passphrase(ctx, snap.Meta)
	if err != nil {
		t.Fatal(err)
	}
	human := keyFile(t, []byte("correct horse battery staple"))
	cryptsetup(t, "luksAddKey", "--batch-mode", "--key-slot", "1", "--key-file", keyFile(t, tpmPass), vmDiskA, human)

	snap, err = p.readChecked(dev, size)
	if err != nil {
		t.Fatalf("inert refuses the header after cryptsetup added a keyslot: %v", err)
	}
	kdf := snap.Meta.Keyslots["1"].KDF
	if kdf.Type != luks2.KDFArgon2id {
		t.Fatalf("cryptsetup's default keyslot uses %s, want argon2id", kdf.Type)
	}

	const rounds = 3
	var inert, cs []time.Duration
	for range rounds {
		start := time.Now()
		snap, err := p.readChecked(dev, size)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.unlockAndMap(ctx, snap, part, spec, src); err != nil {
			t.Fatalf("inert tpm unlock: %v", err)
		}
		inert = append(inert, time.Since(start))
		if err := p.Mapper.Unmap(mapper); err != nil {
			t.Fatal(err)
		}

		start = time.Now()
		cryptsetup(t, "open", "--key-slot", "1", "--key-file", human, vmDiskA, csName)
		cs = append(cs, time.Since(start))
		cryptsetup(t, "close", csName)
	}
	mi, mc := median(inert), median(cs)
	fmt.Printf("BENCH zone-unlock: inert tpm (unseal, pbkdf2 %d, map) median %v; cryptsetup open argon2id (t=%d m=%dKiB p=%d) median %v; ratio cryptsetup/inert %.1fx (TCG, %d rounds)\n",
		snap.Meta.Keyslots["0"].KDF.Iterations, mi.Round(time.Millisecond), kdf.Time, kdf.Memory, kdf.CPUs, mc.Round(time.Millisecond),
		float64(mc)/float64(mi), rounds)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
