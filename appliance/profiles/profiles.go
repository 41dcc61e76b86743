// Package profiles embeds the appliance profiles that ship with inert: demo
// (the default) and hyperbeam. A profile is a manifest plus its payload; the
// payload is named in the manifest and copied by the initramfs builder.
package profiles

import (
	"embed"
	"fmt"
	"sort"
	"strings"
)

//go:embed *.json
var files embed.FS

// Default is the profile built when none is named.
const Default = "demo"

// Manifest returns the raw manifest bytes of the named profile.
func Manifest(name string) ([]byte, error) {
	b, err := files.ReadFile(name + ".json")
	if err != nil {
		return nil, fmt.Errorf("no profile %q (have %s)", name, strings.Join(Names(), ", "))
	}
	return b, nil
}

// Names lists the shipped profiles.
func Names() []string {
	ents, _ := files.ReadDir(".")
	var names []string
	for _, e := range ents {
		names = append(names, strings.TrimSuffix(e.Name(), ".json"))
	}
	sort.Strings(names)
	return names
}
