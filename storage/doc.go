// Package storage owns the appliance's zone volumes: GPT partition names, the
// LUKS2 header writer and the policy a header must satisfy before it is trusted,
// zone selection and marker-gated provisioning, key sources, and the filesystem
// and its mount.
package storage
