package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/foxboron/go-uefi/efi/signature"
	"github.com/foxboron/go-uefi/efi/util"
	"github.com/foxboron/go-uefi/efivar"
)

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFindKernel(t *testing.T) {
	cases := []struct {
		name    string
		files   map[string]string
		want    string
		wantErr error
	}{
		{"newest with modules", map[string]string{
			"boot/vmlinuz-6.1.0-9-amd64": "", "lib/modules/6.1.0-9-amd64/modules.dep": "",
			"boot/vmlinuz-6.1.0-56-amd64": "", "lib/modules/6.1.0-56-amd64/modules.dep": "",
		}, "6.1.0-56-amd64", nil},
		{"image without modules is skipped", map[string]string{
			"boot/vmlinuz-6.1.0-9-amd64": "", "lib/modules/6.1.0-9-amd64/modules.dep": "",
			"boot/vmlinuz-6.2.0-1-amd64": "",
		}, "6.1.0-9-amd64", nil},
		{"no kernel", map[string]string{"lib/modules/6.1.0-9-amd64/modules.dep": ""}, "", ErrNoKernel},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			writeFiles(t, root, c.files)
			k, err := FindKernel(filepath.Join(root, "boot"), filepath.Join(root, "lib/modules"))
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			if k.Version != c.want {
				t.Errorf("version = %q, want %q", k.Version, c.want)
			}
			if c.want != "" && k.Image != filepath.Join(root, "boot", "vmlinuz-"+c.want) {
				t.Errorf("image = %q", k.Image)
			}
		})
	}
}

func fakeKernel(t *testing.T) Kernel {
	root := t.TempDir()
	dep := "kernel/a/dm-crypt.ko: kernel/b/dm-mod.ko kernel/c/dax.ko\n" +
		"kernel/b/dm-mod.ko: kernel/c/dax.ko\n" +
		"kernel/c/dax.ko:\n" +
		"kernel/d/efivarfs.ko:\n"
	writeFiles(t, root, map[string]string{
		"modules.dep": dep, "modules.builtin": "kernel/x/virtio_pci.ko\n",
		"kernel/a/dm-crypt.ko": "A", "kernel/b/dm-mod.ko": "B", "kernel/c/dax.ko": "C", "kernel/d/efivarfs.ko": "D",
	})
	return Kernel{Version: "9.9.9-test", ModulesDir: root}
}

func TestModuleClosure(t *testing.T) {
	k := fakeKernel(t)
	cases := []struct {
		names   []string
		want    []string
		wantErr error
	}{
		{[]string{"dm_crypt"}, []string{"kernel/c/dax.ko", "kernel/b/dm-mod.ko", "kernel/a/dm-crypt.ko"}, nil},
		{[]string{"dm-mod", "dm_crypt", "efivarfs"}, []string{"kernel/c/dax.ko", "kernel/b/dm-mod.ko", "kernel/a/dm-crypt.ko", "kernel/d/efivarfs.ko"}, nil},
		{[]string{"virtio_pci"}, nil, nil}, // built in
		{[]string{"nope"}, nil, ErrUnknownModule},
	}
	for _, c := range cases {
		got, err := k.ModuleClosure(c.names)
		if !errors.Is(err, c.wantErr) {
			t.Errorf("%v: err = %v, want %v", c.names, err, c.wantErr)
			continue
		}
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("%v: closure = %v, want %v", c.names, got, c.want)
		}
	}
}

// TestInitramfsListsWithCpio checks the archive with GNU cpio (an independent
// reader): every parent directory precedes its files, the module list is in
// load order, and two builds are byte-identical.
func TestInitramfsListsWithCpio(t *testing.T) {
	k := fakeKernel(t)
	build := func() []byte {
		a := NewInitramfs()
		if err := a.AddFile("/init", []byte("#!init"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := a.AddModules(k, "dm_crypt"); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := a.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	first, second := build(), build()
	if !bytes.Equal(first, second) {
		t.Fatal("two builds of the same archive differ")
	}
	dir := t.TempDir()
	cmd := exec.Command("cpio", "-idm", "--quiet", "--no-absolute-filenames")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(first)
	if out, err := cmd.CombinedOutput(); err != nil && !strings.Contains(string(out), "dev/") {
		t.Fatalf("cpio -i: %v: %s", err, out)
	}
	list := exec.Command("cpio", "-t", "--quiet")
	list.Stdin = bytes.NewReader(first)
	out, err := list.Output()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, name := range strings.Fields(string(out)) {
		if d := filepath.Dir(name); d != "." && !seen[d] {
			t.Errorf("%s listed before its directory %s", name, d)
		}
		seen[name] = true
	}
	for _, want := range []string{"init", "etc/harness/modules", "lib/modules/9.9.9-test/kernel/a/dm-crypt.ko"} {
		if !seen[want] {
			t.Errorf("%s missing from archive (have %v)", want, out)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "init")); string(b) != "#!init" {
		t.Errorf("init content = %q", b)
	}
	mods, _ := os.ReadFile(filepath.Join(dir, "etc/harness/modules"))
	wantMods := "/lib/modules/9.9.9-test/kernel/c/dax.ko\n/lib/modules/9.9.9-test/kernel/b/dm-mod.ko\n/lib/modules/9.9.9-test/kernel/a/dm-crypt.ko\n"
	if string(mods) != wantMods {
		t.Errorf("module list = %q, want %q", mods, wantMods)
	}
	if err := NewInitramfs().AddFile("/", nil, 0o644); !errors.Is(err, ErrBadArchivePath) {
		t.Errorf("AddFile(/) = %v, want ErrBadArchivePath", err)
	}
}

// encodePPM is an independent P6 writer for the decoder's tests.
func encodePPM(img image.Image, comment string) []byte {
	b := img.Bounds()
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "P6\n%s%d %d\n255\n", comment, b.Dx(), b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			buf.Write([]byte{byte(r >> 8), byte(g >> 8), byte(bl >> 8)})
		}
	}
	return buf.Bytes()
}

func TestDecodePPM(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 7, 3))
	for y := 0; y < 3; y++ {
		for x := 0; x < 7; x++ {
			src.Set(x, y, color.RGBA{uint8(x * 30), uint8(y * 80), uint8(x*y + 10), 0xff})
		}
	}
	got, err := DecodePPM(bytes.NewReader(encodePPM(src, "# made by the test\n")))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Pix, src.Pix) || got.Bounds() != src.Bounds() {
		t.Error("decoded pixels differ from the encoded image")
	}
	good := encodePPM(src, "")
	bad := map[string][]byte{
		"wrong magic":  append([]byte("P3"), good[2:]...),
		"short pixels": good[:len(good)-1],
		"zero width":   []byte("P6 0 3 255\n"),
		"16-bit":       []byte("P6 1 1 65535\n\x00\x00\x00\x00\x00\x00"),
		"huge":         []byte("P6 100000 100000 255\n"),
		"not a number": []byte("P6 x 3 255\n"),
	}
	for name, in := range bad {
		if _, err := DecodePPM(bytes.NewReader(in)); !errors.Is(err, ErrBadPPM) {
			t.Errorf("%s: err = %v, want ErrBadPPM", name, err)
		}
	}
}

func FuzzDecodePPM(f *testing.F) {
	f.Add([]byte("P6\n2 1\n255\n\x01\x02\x03\x04\x05\x06"))
	f.Add([]byte("P6 # c\n1 1 7\n\x07\x07\x07"))
	f.Fuzz(func(t *testing.T, in []byte) {
		img, err := DecodePPM(bytes.NewReader(in))
		if err == nil && len(img.Pix) != 4*img.Bounds().Dx()*img.Bounds().Dy() {
			t.Fatal("pixel buffer does not match bounds")
		}
	})
}

// TestAuthPayload checks the .auth parser against go-uefi's own encoding: the
// payload must be exactly the signature list go-uefi signed.
func TestAuthPayload(t *testing.T) {
	keys := writeTestKeys(t, t.TempDir())
	sl := signature.NewSignatureDatabase()
	if err := sl.Append(signature.CERT_X509_GUID, *util.StringToGUID("11111111-2222-3333-4444-555555555555"), keys["db"].cert.Raw); err != nil {
		t.Fatal(err)
	}
	_, auth, err := signature.SignEFIVariable(efivar.Db, sl, keys["KEK"].key, keys["KEK"].cert)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := AuthPayload(auth.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(payload, sl.Bytes()) {
		t.Error("payload differs from the signed signature list")
	}
	raw := auth.Bytes()
	faults := map[string][]byte{
		"truncated header": raw[:20],
		"cert past end":    raw[:40],
		"wrong cert type":  func() []byte { b := bytes.Clone(raw); b[22] = 0; return b }(),
	}
	for name, in := range faults {
		if _, err := AuthPayload(in); !errors.Is(err, ErrBadAuth) {
			t.Errorf("%s: err = %v, want ErrBadAuth", name, err)
		}
	}
}

func FuzzAuthPayload(f *testing.F) {
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := AuthPayload(in)
		if err == nil && len(p) > len(in) {
			t.Fatal("payload longer than input")
		}
	})
}

func TestEnrolledVarsMissingKeys(t *testing.T) {
	dir := t.TempDir()
	keys := writeTestKeys(t, dir)
	_ = keys
	if err := os.Remove(filepath.Join(dir, "enrol", "KEK.auth")); err != nil {
		t.Fatal(err)
	}
	_, err := EnrolledVars(t.Context(), dir, t.TempDir())
	if !errors.Is(err, ErrNoKeys) {
		t.Errorf("err = %v, want ErrNoKeys", err)
	}
	writeFiles(t, dir, map[string]string{"enrol/KEK.auth": "not an auth file, but long enough to pass size"})
	if _, err := EnrolledVars(t.Context(), dir, t.TempDir()); !errors.Is(err, ErrBadAuth) {
		t.Errorf("garbage KEK.auth: err = %v, want ErrBadAuth", err)
	}
}

func TestEventLog(t *testing.T) {
	pr, pw := net.Pipe()
	var sink bytes.Buffer
	l := newEventLog(&sink)
	go l.consume(pr)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	stream := l.stream(ctx)
	lines := []string{`{"step":"a","status":"first"}`, `not json`, `{"step":"b"}`, `{"step":"c","status":"last"}`}
	go func() {
		for _, s := range lines {
			pw.Write([]byte(s + "\r\n"))
		}
		pw.Close()
	}()
	if err := l.wait(ctx, func(b []byte) bool { return bytes.Contains(b, []byte(`"c"`)) }); err != nil {
		t.Fatal(err)
	}
	var got []string
	for b := range stream {
		got = append(got, string(b))
	}
	if strings.Join(got, "|") != strings.Join(lines, "|") {
		t.Errorf("stream = %q, want %q", got, lines)
	}
	if s, ok := l.lastWithField("status"); !ok || s != "last" {
		t.Errorf("last status = %q %v", s, ok)
	}
	if err := l.wait(ctx, func([]byte) bool { return false }); !errors.Is(err, ErrVMExited) {
		t.Errorf("wait on closed log = %v, want ErrVMExited", err)
	}
	if sink.String() != strings.Join(lines, "\n")+"\n" {
		t.Errorf("sink = %q", sink.String())
	}
	short, cancelShort := context.WithCancel(t.Context())
	cancelShort()
	open := newEventLog(nil)
	if err := open.wait(short, func([]byte) bool { return false }); !errors.Is(err, context.Canceled) {
		t.Errorf("wait with cancelled ctx = %v", err)
	}
}

func FuzzLastStatus(f *testing.F) {
	f.Add([]byte(`{"status":"x"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		l := newEventLog(nil)
		l.add(line)
		s, ok := l.lastWithField("status")
		if ok && s == "" {
			t.Fatal("empty status reported as found")
		}
	})
}

// TestQMPClient runs the client against a scripted QMP peer: greeting,
// capabilities, an async event in between, a result and an error.
func TestQMPClient(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	go func() {
		defer server.Close()
		dec := json.NewDecoder(server)
		send := func(s string) { server.Write([]byte(s + "\r\n")) }
		send(`{"QMP":{"version":{},"capabilities":[]}}`)
		var req map[string]any
		for dec.Decode(&req) == nil {
			switch req["execute"] {
			case "qmp_capabilities":
				send(`{"return":{}}`)
			case "query-status":
				send(`{"event":"RESUME","timestamp":{}}`)
				send(`{"return":{"status":"running","running":true}}`)
			default:
				send(`{"error":{"class":"CommandNotFound","desc":"no such command"}}`)
			}
		}
	}()
	c, err := newQMPClient(client)
	if err != nil {
		t.Fatal(err)
	}
	ret, err := c.command("query-status", nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ Status string }
	if err := json.Unmarshal(ret, &st); err != nil || st.Status != "running" {
		t.Errorf("query-status = %s (%v)", ret, err)
	}
	if ev := c.asyncEvents(); len(ev) != 1 || !bytes.Contains(ev[0], []byte("RESUME")) {
		t.Errorf("async events = %q", ev)
	}
	if _, err := c.command("bogus", map[string]any{"x": 1}, 5*time.Second); !errors.Is(err, ErrQMP) {
		t.Errorf("bogus command err = %v, want ErrQMP", err)
	}
	client.Close()
	if _, err := c.command("query-status", nil, time.Second); !errors.Is(err, ErrQMPClosed) {
		t.Errorf("after close err = %v, want ErrQMPClosed", err)
	}
}

func TestStartConfigErrors(t *testing.T) {
	cases := map[string]Config{
		"no workdir":          {Kernel: "/k"},
		"nothing to boot":     {WorkDir: t.TempDir()},
		"secure boot on bios": {WorkDir: t.TempDir(), Kernel: "/k", SecureBoot: true, Firmware: FirmwareSeaBIOS},
	}
	for name, cfg := range cases {
		if _, err := Start(t.Context(), cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", name, err)
		}
	}
	_, err := Start(t.Context(), Config{WorkDir: t.TempDir(), Kernel: "/k", Firmware: "coreboot"})
	if !errors.Is(err, ErrFirmware) {
		t.Errorf("unknown firmware: err = %v, want ErrFirmware", err)
	}
}
