package measure

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sampleRecord(s string) Record {
	return Record{
		PCR: 11, ContentType: ContentTypeSystemd,
		Content: Content{String: s, EventType: EventTypePhase},
		Digests: []RecordDigest{
			{"sha256", hexOf("sha256", s)},
			{"sha384", hexOf("sha384", s)},
		},
	}
}

func hexOf(bank, s string) string {
	h := independentHash(bank)()
	h.Write([]byte(s))
	return hex.EncodeToString(h.Sum(nil))
}

func TestRecordWireFormat(t *testing.T) {
	enc, err := EncodeRecord(sampleRecord("ready"))
	if err != nil {
		t.Fatal(err)
	}
	if enc[0] != 0x1E || enc[len(enc)-1] != '\n' || bytes.Count(enc, []byte{'\n'}) != 1 {
		t.Fatalf("not one JSON-SEQ record: %q", enc)
	}
	// Field names as systemd writes them, checked through a generic decoder.
	var generic map[string]any
	if err := json.Unmarshal(enc[1:], &generic); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"pcr", "digests", "content_type", "content"} {
		if _, ok := generic[k]; !ok {
			t.Errorf("record lacks %q: %s", k, enc)
		}
	}
	d := generic["digests"].([]any)[0].(map[string]any)
	if d["hashAlg"] != "sha256" || d["digest"] != hexOf("sha256", "ready") {
		t.Errorf("digest entry %v", d)
	}
	if c := generic["content"].(map[string]any); c["string"] != "ready" || c["eventType"] != "phase" {
		t.Errorf("content %v", c)
	}
}

func TestDecodeRecords(t *testing.T) {
	good := func(s string) []byte { b, _ := EncodeRecord(sampleRecord(s)); return b }
	two := append(good("enter-initrd"), good("ready")...)
	recs, err := DecodeRecords(two)
	if err != nil || len(recs) != 2 || recs[1].Content.String != "ready" || !recs[0].SelfDescribing() {
		t.Fatalf("decode two records: %+v %v", recs, err)
	}
	// A systemd record with fields inert does not write still decodes.
	foreign := []byte("\x1e{\"pcr\":15,\"digests\":[{\"hashAlg\":\"sha256\",\"digest\":\"" + hexOf("sha256", "x") +
		"\"}],\"content_type\":\"systemd\",\"content\":{\"eventType\":\"machine-id\",\"string\":\"machine-id:abc\",\"bootId\":\"0123\",\"timestamp\":5}}\n")
	if recs, err := DecodeRecords(foreign); err != nil || recs[0].PCR != 15 {
		t.Fatalf("foreign record: %v", err)
	}
	bad := map[string][]byte{
		"no separator":     bytes.TrimPrefix(good("ready"), []byte{0x1e}),
		"truncated":        two[:len(two)-5],
		"no newline":       bytes.TrimSuffix(good("ready"), []byte("\n")),
		"not json":         []byte("\x1e{pcr:11}\n"),
		"trailing data":    []byte("\x1e{\"pcr\":11} {}\n"),
		"pcr out of range": bytes.Replace(good("ready"), []byte(`"pcr":11`), []byte(`"pcr":24`), 1),
		"negative pcr":     bytes.Replace(good("ready"), []byte(`"pcr":11`), []byte(`"pcr":-1`), 1),
		"unknown bank":     bytes.Replace(good("ready"), []byte(`"sha384"`), []byte(`"sm3_256"`), 1),
		"duplicate bank":   bytes.Replace(good("ready"), []byte(`"sha384"`), []byte(`"sha256"`), 1),
		"short digest":     bytes.Replace(good("ready"), []byte(hexOf("sha256", "ready")), []byte("abcd"), 1),
		"no digests":       []byte("\x1e{\"pcr\":11,\"digests\":[]}\n"),
		"null":             []byte("\x1enull\n"),
	}
	for name, data := range bad {
		if _, err := DecodeRecords(data); !errors.Is(err, ErrLogFormat) {
			t.Errorf("%s: %v, want ErrLogFormat", name, err)
		}
	}
	if _, err := EncodeRecord(Record{PCR: 11}); !errors.Is(err, ErrLogFormat) {
		t.Errorf("encode without digests: %v", err)
	}
}

func TestReplayFromStart(t *testing.T) {
	recs := []Record{sampleRecord("a"), sampleRecord("b")}
	start := Values{}
	start.Set("sha256", 11, chain("sha256", "stub"))
	got, err := Replay(recs, start)
	if err != nil {
		t.Fatal(err)
	}
	if want := chain("sha256", "stub", "a", "b"); !bytes.Equal(got.Get("sha256", 11), want) {
		t.Errorf("sha256 replay %x, want %x", got.Get("sha256", 11), want)
	}
	if want := chain("sha384", "a", "b"); !bytes.Equal(got.Get("sha384", 11), want) {
		t.Errorf("sha384 replay from zero %x, want %x", got.Get("sha384", 11), want)
	}
	if !bytes.Equal(start.Get("sha256", 11), chain("sha256", "stub")) {
		t.Error("Replay modified start")
	}
}

func TestLogDirtyMarkAndPermissions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log")
	l, err := CreateLog(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.BootID = strings.Repeat("ab", 16)
	l.Now = func() uint64 { return 42 }
	var stickyDuring bool
	err = l.Measure(sampleRecord("x"), func() error {
		fi, _ := os.Stat(path)
		stickyDuring = fi.Mode()&os.ModeSticky != 0
		return nil
	})
	if err != nil || !stickyDuring {
		t.Fatalf("measure: %v, sticky during extend: %v", err, stickyDuring)
	}
	recs, err := ReadLog(path)
	if err != nil || recs[0].Content.BootID != l.BootID || recs[0].Content.Timestamp != 42 {
		t.Fatalf("read back: %+v %v", recs, err)
	}
	injected := errors.New("injected extend failure")
	if err := l.Measure(sampleRecord("y"), func() error { return injected }); !errors.Is(err, injected) {
		t.Fatalf("failed extend: %v", err)
	}
	if _, err := ReadLog(path); !errors.Is(err, ErrLogFormat) {
		t.Fatalf("log after failed extend reads as %v, want incomplete", err)
	}
	// A symlink planted at the log path is not followed.
	link := filepath.Join(dir, "link")
	os.Symlink(filepath.Join(dir, "target"), link)
	if _, err := CreateLog(link); !errors.Is(err, ErrLog) {
		t.Fatalf("CreateLog on symlink: %v, want ErrLog", err)
	}
}

func TestReadBootID(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "proc/sys/kernel/random"), 0o755)
	os.WriteFile(filepath.Join(root, "proc/sys/kernel/random/boot_id"), []byte("0b4c6e1a-6f2b-4d5e-9a1b-2c3d4e5f6a7b\n"), 0o644)
	if got := ReadBootID(root); got != "0b4c6e1a6f2b4d5e9a1b2c3d4e5f6a7b" {
		t.Errorf("boot id %q", got)
	}
	if got := ReadBootID(t.TempDir()); got != "" {
		t.Errorf("missing boot id gave %q", got)
	}
}

func TestLayoutStrings(t *testing.T) {
	// PCR 15 is never in the allowlist, whatever else changes.
	if PCRAllowed(PCRService) {
		t.Fatal("PCR 15 allowed")
	}
	if Phases[0].Word != "enter-initrd" || Phases[len(Phases)-1].Word != "ready" {
		t.Errorf("phases must start with enter-initrd and end with ready: %v", Phases)
	}
	cfg := []byte("{}")
	if ConfigEvent(cfg) == NoConfigEvent || ConfigEvent(cfg) == ConfigEvent([]byte("{ }")) {
		t.Error("config events do not distinguish inputs")
	}
	if !strings.HasSuffix(ConfigEvent(cfg), hexOf("sha256", "{}")) {
		t.Errorf("config event %q does not carry sha256 of the bytes", ConfigEvent(cfg))
	}
	rec := &recorder{}
	if err := MeasurePhase(rec, "not-a-phase"); err == nil {
		t.Error("unknown phase word accepted")
	}
	MeasureConfig(rec, nil, false)
	MeasureWifi(rec, true)
	if len(rec.got) != 2 || rec.got[0] != "12:inert-config:none" || rec.got[1] != "12:inert-wifi-credentials:present" {
		t.Errorf("PCR 12 events %v", rec.got)
	}
}

type recorder struct{ got []string }

func (r *recorder) Extend(pcr int, eventType, description string, data []byte) error {
	if string(data) != description {
		return errors.New("measured bytes differ from description")
	}
	r.got = append(r.got, itoa(pcr)+":"+description)
	return nil
}

func FuzzDecodeRecords(f *testing.F) {
	enc, _ := EncodeRecord(sampleRecord("enter-initrd"))
	f.Add(enc)
	f.Add([]byte("\x1e{}\n"))
	f.Add([]byte("\x1e{\"pcr\":11,\"digests\":[{\"hashAlg\":\"sha1\",\"digest\":\"00\"}]}\n\x1e"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := DecodeRecords(data)
		if err != nil {
			if !errors.Is(err, ErrLogFormat) {
				t.Fatalf("error without ErrLogFormat: %v", err)
			}
			return
		}
		// What decodes re-encodes, decodes to the same records and replays.
		var again []byte
		for _, r := range recs {
			b, err := EncodeRecord(r)
			if err != nil {
				t.Fatalf("decoded record does not encode: %v", err)
			}
			again = append(again, b...)
		}
		recs2, err := DecodeRecords(again)
		if err != nil || len(recs2) != len(recs) {
			t.Fatalf("round trip: %v", err)
		}
		for i := range recs {
			a, _ := json.Marshal(recs[i])
			b, _ := json.Marshal(recs2[i])
			if !bytes.Equal(a, b) {
				t.Fatalf("record %d changed: %s vs %s", i, a, b)
			}
		}
		if _, err := Replay(recs, nil); err != nil {
			t.Fatalf("valid records do not replay: %v", err)
		}
	})
}

func FuzzEncodeRecord(f *testing.F) {
	f.Add(11, "sha256", "enter-initrd", "phase")
	f.Add(12, "sha1", "inert-config:none\x1e\n\"", "inert-config")
	f.Fuzz(func(t *testing.T, pcr int, bank, s, eventType string) {
		r := Record{PCR: pcr, ContentType: ContentTypeSystemd, Content: Content{String: s, EventType: eventType}}
		if b, err := BankByName(bank); err == nil {
			r.Digests = []RecordDigest{{bank, hex.EncodeToString(b.Digest([]byte(s)))}}
		}
		enc, err := EncodeRecord(r)
		if err != nil {
			return
		}
		if bytes.IndexByte(enc[1:], 0x1e) >= 0 || bytes.Count(enc, []byte("\n")) != 1 {
			t.Fatalf("separator or newline leaked into the JSON: %q", enc)
		}
		recs, err := DecodeRecords(enc)
		if err != nil || len(recs) != 1 || recs[0].Content.String != s || !recs[0].SelfDescribing() {
			t.Fatalf("round trip of %q: %+v %v", s, recs, err)
		}
	})
}
