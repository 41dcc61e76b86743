package kernel

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var leadingZeros = regexp.MustCompile(`(^|[^0-9])0+([0-9])`)

// GNU sort -V is the oracle for version order (it applies dpkg's rules to the
// whole string; dpkg itself would split a kernel release at its last '-').
func TestCompareVersionsAgreesWithSortV(t *testing.T) {
	versions := []string{"6.1.0-9-amd64", "6.1.0-10-amd64", "6.1.0-56-amd64", "6.1.0-56-cloud-amd64",
		"6.12.9-amd64", "6.1.0", "6.1", "6.1~rc1", "6.1.0-00056-amd64", "5.10.0-30-amd64",
		"6.1.0-56-amd64+b1", "6.1.0-56-amd64~bpo", "6.10.0-rc7", "6.1a", "6.1.0-9999999999", "6.1.0-56_amd64"}
	cmd := exec.Command("sort", "-V")
	cmd.Stdin = strings.NewReader(strings.Join(versions, "\n") + "\n")
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sort -V: %v", err)
	}
	pos := map[string]int{}
	for i, v := range strings.Fields(string(out)) {
		pos[v] = i
	}
	if len(pos) != len(versions) {
		t.Fatalf("sort -V returned %d versions, want %d", len(pos), len(versions))
	}
	for _, a := range versions {
		for _, b := range versions {
			got := CompareVersions(a, b)
			if got == 0 {
				// only leading zeros of a number may differ
				if leadingZeros.ReplaceAllString(a, "$1$2") != leadingZeros.ReplaceAllString(b, "$1$2") {
					t.Errorf("CompareVersions(%q, %q) = 0", a, b)
				}
				continue
			}
			if want := pos[a] < pos[b]; (got < 0) != want {
				t.Errorf("CompareVersions(%q, %q) = %d, sort -V disagrees", a, b, got)
			}
		}
	}
}

func touch(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestInstalled(t *testing.T) {
	cases := []struct {
		name     string
		images   []string // versions with a vmlinuz
		modules  []string // versions with modules.dep
		configs  []string
		want     string
		wantErr  error
		wantConf bool
	}{
		{name: "numeric, not lexical", images: []string{"6.1.0-9-amd64", "6.1.0-10-amd64"},
			modules: []string{"6.1.0-9-amd64", "6.1.0-10-amd64"}, configs: []string{"6.1.0-10-amd64"},
			want: "6.1.0-10-amd64", wantConf: true},
		{name: "newest without modules is skipped", images: []string{"6.1.0-9-amd64", "6.1.0-11-amd64"},
			modules: []string{"6.1.0-9-amd64"}, want: "6.1.0-9-amd64"},
		{name: "modules without image is skipped", images: []string{"6.1.0-9-amd64"},
			modules: []string{"6.1.0-9-amd64", "6.12.0-1-amd64"}, want: "6.1.0-9-amd64"},
		{name: "nothing installed", wantErr: ErrNoKernel},
		{name: "no modules at all", images: []string{"6.1.0-9-amd64"}, wantErr: ErrNoKernel},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			boot, mods := filepath.Join(dir, "boot"), filepath.Join(dir, "lib/modules")
			os.MkdirAll(boot, 0o755)
			for _, v := range tc.images {
				touch(t, filepath.Join(boot, "vmlinuz-"+v))
			}
			for _, v := range tc.modules {
				touch(t, filepath.Join(mods, v, "modules.dep"))
			}
			for _, v := range tc.configs {
				touch(t, filepath.Join(boot, "config-"+v))
			}
			k, err := Installed(boot, mods)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				return
			}
			if k.Version != tc.want || k.Vmlinuz != filepath.Join(boot, "vmlinuz-"+tc.want) ||
				k.ModulesDir != filepath.Join(mods, tc.want) || (k.Config != "") != tc.wantConf {
				t.Errorf("Installed = %+v, want version %s", k, tc.want)
			}
		})
	}
}

// The real Debian kernel this machine builds with must be found and fit.
func TestInstalledDebianKernelIsFit(t *testing.T) {
	k, err := Installed("/boot", "/lib/modules")
	if err != nil {
		t.Fatalf("%v (scripts/deps.sh installs linux-image-amd64)", err)
	}
	if k.Config == "" {
		t.Fatalf("%s has no config", k.Version)
	}
	for _, p := range Check(k.Config, Requirements) {
		t.Errorf("Debian kernel %s: %s", k.Version, p)
	}
}

// One injected fault per case against the real config: exactly that
// requirement fails.
func TestCheckFaults(t *testing.T) {
	k, err := Installed("/boot", "/lib/modules")
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(k.Config)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		option  string
		rewrite func(line string) string
		have    string
	}{
		{"CONFIG_SECURITYFS", func(string) string { return "# CONFIG_SECURITYFS is not set" }, ""},
		{"CONFIG_FB_EFI", func(string) string { return "CONFIG_FB_EFI=m" }, "m"},
		{"CONFIG_DM_CRYPT", func(string) string { return "" }, ""},
		{"CONFIG_TCG_TIS", func(string) string { return "CONFIG_TCG_TIS=n" }, "n"},
	}
	for _, tc := range cases {
		t.Run(tc.option, func(t *testing.T) {
			var out []string
			found := false
			for _, line := range strings.Split(string(orig), "\n") {
				if strings.HasPrefix(line, tc.option+"=") {
					line, found = tc.rewrite(line), true
				}
				out = append(out, line)
			}
			if !found {
				t.Fatalf("%s not in %s", tc.option, k.Config)
			}
			p := filepath.Join(t.TempDir(), "config")
			if err := os.WriteFile(p, []byte(strings.Join(out, "\n")), 0o644); err != nil {
				t.Fatal(err)
			}
			problems := Check(p, Requirements)
			if len(problems) != 1 || problems[0].Requirement.Option != tc.option || problems[0].Have != tc.have {
				t.Fatalf("problems = %v, want only %s (have %q)", problems, tc.option, tc.have)
			}
			if !strings.Contains(problems[0].String(), tc.option) {
				t.Errorf("problem text %q does not name the option", problems[0])
			}
		})
	}
}

func TestCheckUnreadable(t *testing.T) {
	for name, content := range map[string]*string{"missing": nil, "garbage": ptr("CONFIG_X=y\nnot a config line\n")} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "config")
			if content != nil {
				os.WriteFile(p, []byte(*content), 0o644)
			}
			problems := Check(p, Requirements)
			if len(problems) != 1 || !errors.Is(problems[0].Err, ErrConfig) {
				t.Fatalf("problems = %v, want one ErrConfig", problems)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func FuzzParseConfig(f *testing.F) {
	f.Add("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"str=x\"\n")
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := ParseConfig(strings.NewReader(s))
		if err != nil {
			return
		}
		for k := range cfg {
			if !strings.HasPrefix(k, "CONFIG_") || strings.Contains(k, "=") {
				t.Fatalf("bad key %q", k)
			}
		}
	})
}

func FuzzCompareVersions(f *testing.F) {
	f.Add("6.1.0-10-amd64", "6.1.0-9-amd64")
	f.Fuzz(func(t *testing.T, a, b string) {
		if CompareVersions(a, b) != -CompareVersions(b, a) {
			t.Fatalf("not antisymmetric: %q %q", a, b)
		}
		if CompareVersions(a, a) != 0 {
			t.Fatalf("%q != itself", a)
		}
	})
}
