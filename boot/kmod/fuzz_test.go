package kmod

import (
	"strings"
	"testing"
)

// FuzzParseIndex feeds arbitrary index files: parsing never panics, and a
// closure it returns lists every module after its hard dependencies.
func FuzzParseIndex(f *testing.F) {
	f.Add([]byte(smallTree["lib/modules/"+testRelease+"/modules.dep"]),
		[]byte(smallTree["lib/modules/"+testRelease+"/modules.alias"]),
		[]byte("kernel/fs/configfs/configfs.ko\n"),
		[]byte("softdep uas pre: crypto-crc32c post: fs-vfat\n"), "uas")
	f.Add([]byte("a.ko: b.ko\nb.ko: a.ko\n"), []byte("alias x* a\n"), []byte(""), []byte("softdep a pre: x1\n"), "x1")
	f.Fuzz(func(t *testing.T, dep, alias, builtin, softdep []byte, name string) {
		ix, err := ParseIndex(IndexFiles{Dep: dep, Alias: alias, Builtin: builtin, Softdep: softdep})
		if err != nil {
			return
		}
		mods, err := ix.Resolve(name)
		if err != nil {
			return
		}
		order, err := ix.Closure(mods)
		if err != nil {
			return
		}
		pos := map[string]int{}
		for i, m := range order {
			if _, dup := pos[m]; dup {
				t.Fatalf("%s twice in %v", m, order)
			}
			pos[m] = i
		}
		for i, m := range order {
			for _, d := range ix.deps[m] {
				if p, ok := pos[d]; !ok || p > i {
					t.Fatalf("%s before its dependency %s in %v", m, d, order)
				}
			}
		}
		ix.Match(name)
	})
}

// FuzzGlobMatch: never panics, and a pattern without special bytes matches
// exactly itself.
func FuzzGlobMatch(f *testing.F) {
	for _, s := range []string{"usb:v13FDp3940d0[0-2]*dc*", "a[!]]c", "[", "\\", "*?*[^x-]"} {
		f.Add(s, "usb:v13FDp3940d0100dc00")
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		got := globMatch(pattern, name)
		if !strings.ContainsAny(pattern, `*?[\`) && got != (pattern == name) {
			t.Fatalf("literal pattern %q vs %q: %v", pattern, name, got)
		}
		if globMatch("*", name) != true {
			t.Fatalf("* does not match %q", name)
		}
	})
}
