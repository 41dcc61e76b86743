package initramfs

// The disk image an operator writes to a USB stick: a GPT with one FAT32
// partition named ESP holding the signed UKI as the removable-media boot
// loader, the marker inert looks for, and a README. Reproducible: the GUIDs
// and the FAT volume id are derived from the UKI's hash and every timestamp
// is fixed, so the same UKI always gives the same image bytes.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// What the boot side looks for on the stick (boot.DefaultESPSpec).
const (
	ESPPartitionName = "ESP"
	ESPVolumeLabel   = "LAPEE_ESP"
	ESPMarkerPath    = "/LAPEE.MARKER"
	ESPMarker        = "lapee-esp-v1\n"
	ESPLoaderPath    = "/EFI/Boot/BootX64.efi"
	ESPReadmePath    = "/README.TXT"
)

// ErrImageTool means mkfs.vfat or mtools failed or is missing.
var ErrImageTool = errors.New("image: filesystem tool failed")

const (
	imageMiB        = 1 << 20
	imageMinESP     = 64 * imageMiB // FAT32 needs at least ~33 MiB at 512-byte clusters
	imageSlack      = 16 * imageMiB // room for operator files and a bigger UKI later
	imageStartLBA   = imageMiB / gptSector
	imageEpoch      = "946684800" // 2000-01-01T00:00:00Z, every FAT timestamp
	imageReadmeText = `This stick boots an inert appliance.

EFI/Boot/BootX64.efi is the signed appliance image (UKI). Do not change it:
Secure Boot and the measured boot values depend on its exact bytes.

Operator settings go into the EFI/boot folder on this stick:
  config.json  a JSON object with the service's settings
  wifi.conf    two lines: the Wi-Fi network name, then its password

Put them there with "inert esp set --image IMG --config F --wifi F" before
writing the image, or copy them onto the stick. They are read once at boot
and checked; a rejected file is ignored and the screen says why.
`
)

// ImageOptions describe one disk image.
type ImageOptions struct {
	// UKI is the (signed) unified kernel image to boot.
	UKI []byte
	// Out is the image file to write; it is replaced atomically.
	Out string
	// ESPSize is the partition size in bytes; zero means the UKI plus
	// slack, at least 64 MiB. It is rounded up to whole MiB.
	ESPSize int64
	// Progress receives one line per step; nil discards them.
	Progress io.Writer
}

// imageGUID derives a GUID (version 4 layout, RFC 4122 variant) from the
// UKI hash and a purpose, so images are reproducible yet distinct per UKI.
func imageGUID(ukiHash [32]byte, purpose string) [16]byte {
	h := sha256.Sum256(append([]byte("inert image "+purpose+"\x00"), ukiHash[:]...))
	var g [16]byte
	copy(g[:], h[:16])
	g[6] = g[6]&0x0f | 0x40
	g[8] = g[8]&0x3f | 0x80
	return g
}

// BuildImage writes the boot stick image described by opts.
func BuildImage(opts ImageOptions) error {
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	if len(opts.UKI) == 0 {
		return errors.New("image: no UKI given")
	}
	if opts.Out == "" {
		return errors.New("image: no output path given")
	}
	espSize := opts.ESPSize
	if espSize == 0 {
		espSize = max(imageMinESP, int64(len(opts.UKI))+int64(len(opts.UKI))/4+imageSlack)
	}
	espSize = (espSize + imageMiB - 1) / imageMiB * imageMiB
	if espSize < imageMinESP {
		return fmt.Errorf("image: ESP of %d bytes is below the FAT32 minimum of %d", espSize, imageMinESP)
	}
	if espSize < int64(len(opts.UKI))+imageMiB {
		return fmt.Errorf("image: ESP of %d bytes cannot hold a UKI of %d", espSize, len(opts.UKI))
	}
	// 1 MiB before the partition, 1 MiB after it for the backup GPT.
	diskSize := imageMiB + espSize + imageMiB
	ukiHash := sha256.Sum256(opts.UKI)
	diskGUID, partGUID := imageGUID(ukiHash, "disk"), imageGUID(ukiHash, "esp")
	fatSeed := imageGUID(ukiHash, "fat")
	volID := binary.BigEndian.Uint32(fatSeed[:4])

	if err := os.MkdirAll(filepath.Dir(opts.Out), 0o755); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	work, err := os.MkdirTemp(filepath.Dir(opts.Out), ".inert-image-*")
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	defer os.RemoveAll(work)
	tmp := filepath.Join(work, "disk.img")

	fmt.Fprintf(progress, "image: GPT, partition %s of %d MiB at 1 MiB (PARTUUID %s)\n",
		ESPPartitionName, espSize/imageMiB, gptGUIDString(imageGUIDOnDisk(partGUID)))
	head, tail, err := gptLayout(uint64(diskSize/gptSector), diskGUID, []gptPartition{{
		Type: [16]byte{0xC1, 0x2A, 0x73, 0x28, 0xF8, 0x1F, 0x11, 0xD2, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B},
		GUID: partGUID, FirstLBA: imageStartLBA, LastLBA: imageStartLBA + uint64(espSize/gptSector) - 1,
		Name: ESPPartitionName,
	}})
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := imageWriteDisk(tmp, diskSize, head, tail); err != nil {
		return err
	}

	fmt.Fprintf(progress, "image: FAT32 %s, volume id %08X\n", ESPVolumeLabel, volID)
	if err := imageRun("mkfs.vfat", "-F", "32", "--invariant", "--mbr=n", "-i", fmt.Sprintf("%08X", volID),
		"-n", ESPVolumeLabel, "-h", fmt.Sprint(imageStartLBA), fmt.Sprintf("--offset=%d", imageStartLBA),
		tmp, fmt.Sprint(espSize/1024)); err != nil {
		return err
	}

	files := []struct {
		path string
		data []byte
	}{
		{ESPLoaderPath, opts.UKI},
		{ESPMarkerPath, []byte(ESPMarker)},
		{ESPReadmePath, []byte(strings.ReplaceAll(imageReadmeText, "\n", "\r\n"))},
	}
	fat := ESPFAT{Image: tmp, Offset: imageMiB}
	if err := fat.Mkdir("/EFI", "/EFI/Boot"); err != nil {
		return err
	}
	for _, f := range files {
		fmt.Fprintf(progress, "image: %s (%d bytes)\n", f.path, len(f.data))
		if err := fat.Put(f.path, f.data); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, opts.Out); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	fmt.Fprintf(progress, "image: wrote %s (%d MiB)\n", opts.Out, diskSize/imageMiB)
	return nil
}

// imageGUIDOnDisk is gptGUIDBytes as a slice, for gptGUIDString.
func imageGUIDOnDisk(g [16]byte) []byte {
	b := gptGUIDBytes(g)
	return b[:]
}

// imageWriteDisk creates a sparse file of size bytes with the GPT at both ends.
func imageWriteDisk(path string, size int64, head, tail []byte) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	err = f.Truncate(size)
	if err == nil {
		_, err = f.WriteAt(head, 0)
	}
	if err == nil {
		_, err = f.WriteAt(tail, size-int64(len(tail)))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	return nil
}

func imageRun(tool string, args ...string) error {
	_, err := imageOutput(tool, args...)
	return err
}

// imageOutput runs a filesystem tool with a pinned clock and time zone and
// no user configuration, returning its standard output.
func imageOutput(tool string, args ...string) ([]byte, error) {
	cmd := exec.Command(tool, args...)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+imageEpoch, "TZ=UTC", "MTOOLS_SKIP_CHECK=1", "MTOOLSRC=/dev/null")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: %s %s: %v: %s", ErrImageTool, tool, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}
