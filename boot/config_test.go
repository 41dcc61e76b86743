package boot

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestValidateConfig(t *testing.T) {
	rules := DefaultESPSpec().Config
	for _, tc := range []struct {
		name    string
		in      string
		wantErr error
		wantKey string // the offending key must be named in the error
	}{
		{name: "empty object", in: "{}"},
		{name: "realistic", in: `{"port": 8734, "on": {"start": [{"device": "x@1.0", "hook": {"result": "ignore"}}]}, "priv_key_location": "/x"}`},
		{name: "rejected nested only at top", in: `{"a": {"trusted-devices": []}}`},
		{name: "too small", in: "{", wantErr: ErrConfigSize},
		{name: "too large", in: `{"a":"` + strings.Repeat("x", rules.MaxBytes) + `"}`, wantErr: ErrConfigSize},
		{name: "NUL", in: "{\"a\":\"\x00\"}", wantErr: ErrConfigNUL},
		{name: "bad UTF-8", in: "{\"a\":\"\xff\"}", wantErr: ErrConfigUTF8},
		{name: "syntax", in: `{"a": 1,}`, wantErr: ErrConfigJSON},
		{name: "trailing data", in: `{} {}`, wantErr: ErrConfigJSON},
		{name: "array", in: `[{"a":1}]`, wantErr: ErrConfigNotObject},
		{name: "string", in: `"{}"`, wantErr: ErrConfigNotObject},
		{name: "top key", in: `{"trusted-devices": []}`, wantErr: ErrConfigRejectedKey, wantKey: "trusted-devices"},
		{name: "top key canonicalised", in: `{"Preloaded_Store": 1}`, wantErr: ErrConfigRejectedKey, wantKey: "Preloaded_Store"},
		{name: "top key escaped", in: `{"forge\u002dbootstrap": 1}`, wantErr: ErrConfigRejectedKey, wantKey: "forge-bootstrap"},
		{name: "any depth", in: `{"on": {"start": [{"measurement_body_source": "x"}]}}`, wantErr: ErrConfigRejectedKey, wantKey: "measurement_body_source"},
		{name: "any depth in nested arrays", in: `{"a": [[{"b": [{"MEASUREMENT-BODY-SOURCE": 1}]}]]}`, wantErr: ErrConfigRejectedKey},
		{name: "duplicate key", in: `{"on": {}, "on": {"start": []}}`, wantErr: ErrConfigDuplicateKey, wantKey: "on"},
		{name: "duplicate after canonicalising", in: `{"a": {"x_y": 1, "X-Y": 2}}`, wantErr: ErrConfigDuplicateKey},
		{name: "too deep", in: strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100), wantErr: ErrConfigJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateConfig([]byte(tc.in), rules)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantKey != "" && !strings.Contains(err.Error(), tc.wantKey) {
				t.Errorf("error %q does not name %q", err, tc.wantKey)
			}
		})
	}
}

func TestValidateConfigErrorIsSafe(t *testing.T) {
	key := "trusted-devices\n\x1b[2J" + strings.Repeat("é", 200)
	b, _ := json.Marshal(map[string]int{"a": 1})
	in := `{"` + strings.ReplaceAll(key, "\n", `\n`) + `": 1, "x": ` + string(b) + `}`
	in = strings.Replace(in, "\x1b", `\u001b`, 1)
	rules := DefaultESPSpec().Config
	rules.RejectedTopKeys = append(rules.RejectedTopKeys, key)
	err := ValidateConfig([]byte(in), rules)
	if !errors.Is(err, ErrConfigRejectedKey) {
		t.Fatalf("err = %v", err)
	}
	for _, r := range err.Error() {
		if r < 0x20 || r > 0x7e {
			t.Fatalf("status-line error has %q: %q", r, err)
		}
	}
	if len(err.Error()) > 200 {
		t.Errorf("status-line error is %d bytes long", len(err.Error()))
	}
}

// rejectedKeyIn is a second implementation of the key rules on
// encoding/json's generic decoding.
func rejectedKeyIn(v any, rules ConfigRules, depth int) bool {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			ck := strings.ReplaceAll(strings.ToLower(k), "_", "-")
			for _, r := range rules.RejectedAnyDepthKeys {
				if ck == r {
					return true
				}
			}
			if depth == 0 {
				for _, r := range rules.RejectedTopKeys {
					if ck == r {
						return true
					}
				}
			}
			if rejectedKeyIn(val, rules, depth+1) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if rejectedKeyIn(e, rules, depth+1) {
				return true
			}
		}
	}
	return false
}

func FuzzValidateConfig(f *testing.F) {
	f.Add([]byte(`{"on": {"start": [{"measurement-body-source": 1}]}}`))
	f.Add([]byte(`{"Trusted_Devices": 1}`))
	f.Add([]byte(`{"a": [1, {"b": null}], "c": "\u00e9"}`))
	rules := DefaultESPSpec().Config
	f.Fuzz(func(t *testing.T, b []byte) {
		err := ValidateConfig(b, rules)
		if err != nil {
			return
		}
		var v any
		if uerr := json.Unmarshal(b, &v); uerr != nil {
			t.Fatalf("accepted bytes encoding/json rejects: %v", uerr)
		}
		if _, ok := v.(map[string]any); !ok {
			t.Fatalf("accepted a non-object")
		}
		if rejectedKeyIn(v, rules, 0) {
			t.Fatalf("accepted a rejected key: %q", b)
		}
	})
}
