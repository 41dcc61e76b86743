// Package appliance owns what an inert image is for: the appliance manifest
// (baked into the initramfs and measured with it), the boot plan as an ordered
// list of named steps, the events those steps emit, the failure policy that maps
// an error's class to a terminal action, and the service spec with its
// environment. It decides; PID 1 (init) acts.
package appliance
