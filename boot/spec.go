package boot

// ESPSpec says how the boot ESP is recognised and which operator files it may
// carry. It is part of the appliance manifest and so is measured with the
// initramfs; the zero value is not usable, see DefaultESPSpec.
type ESPSpec struct {
	// Loader is the path, relative to the ESP root, that must exist (the UKI).
	Loader string `json:"loader"`
	// MarkerFile is the file whose first line must equal MarkerLine.
	MarkerFile string `json:"marker_file"`
	MarkerLine string `json:"marker_line"`
	// Rounds is how many scan rounds to try, RoundSeconds apart at most; a
	// uevent for a new block device ends a round's wait early.
	Rounds       int `json:"rounds"`
	RoundSeconds int `json:"round_seconds"`
	// Config and Wifi are the operator files.
	Config ConfigRules `json:"config"`
	Wifi   WifiRules   `json:"wifi"`
}

// ConfigRules are the validation rules for the operator's config.json
// (CONTRACTS §1.10).
type ConfigRules struct {
	// Paths are tried in order, relative to the ESP root; the first that exists wins.
	Paths    []string `json:"paths"`
	MinBytes int      `json:"min_bytes"`
	MaxBytes int      `json:"max_bytes"`
	// RejectedTopKeys are refused as top-level keys, RejectedAnyDepthKeys at any
	// depth. Keys are compared canonicalised: lower case, '_' -> '-'.
	RejectedTopKeys      []string `json:"rejected_top_keys"`
	RejectedAnyDepthKeys []string `json:"rejected_any_depth_keys"`
	// Out is where the accepted bytes are written (0600, tmp file + rename);
	// it holds "{}" until then.
	Out string `json:"out"`
}

// WifiRules locate wifi.conf (CONTRACTS §1.9). Its format is fixed by the
// contract and not configurable.
type WifiRules struct {
	Paths []string `json:"paths"`
}

// DefaultESPSpec is the contract's ESP: what PermawebOS images carry.
func DefaultESPSpec() ESPSpec {
	return ESPSpec{
		Loader:       "/EFI/Boot/BootX64.efi",
		MarkerFile:   "/LAPEE.MARKER",
		MarkerLine:   "lapee-esp-v1",
		Rounds:       10,
		RoundSeconds: 1,
		Config: ConfigRules{
			Paths:    []string{"/EFI/boot/config.json", "/EFI/Boot/config.json"},
			MinBytes: 2,
			MaxBytes: 65536,
			RejectedTopKeys: []string{"trusted-devices", "preloaded-store",
				"preloaded-devices-index", "forge-bootstrap", "loaded-device-store"},
			RejectedAnyDepthKeys: []string{"measurement-body-source"},
			Out:                  "/tmp/config.json",
		},
		Wifi: WifiRules{Paths: []string{"/EFI/boot/wifi.conf", "/EFI/Boot/wifi.conf"}},
	}
}
