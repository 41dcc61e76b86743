// Package storage owns the appliance's zone volumes: GPT partition names, the
// LUKS2 header writer and the policy a header must satisfy before it is trusted,
// zone selection and marker-gated provisioning, key sources, and the filesystem
// and its mount.
//
// Key sources: StaticKey (the hyperbeam zone key, ZoneKey, handed in by the
// service through `inert zone open`, see OpenForService), TPMKey (a
// random secret sealed to PCR 7, 11 and 12, kept as a systemd-tpm2 token; see
// tpmkey.go for which PCR 11 value and why) and SNPKey (a key the AMD secure
// processor derives from the VCEK and the launch, its inputs kept as an
// inert-snp token; see snpkey.go).
//
// A volume inert provisions names itself from inside: VolumeIDFile at the
// root of its filesystem (volumeid.go) holds the LUKS UUID and the facts of
// its creation, and is what evidence reports as the volume-id.
//
// The ext4 label: CONTRACTS §3 names the volume "lapee-nonvolatile", which is
// 17 bytes; the ext4 superblock holds 16, so the filesystem label is
// "lapee-nonvolatil" (exactly what mke2fs itself truncates it to). The LUKS2
// label (48 bytes) and the dm name keep the full name.
package storage
