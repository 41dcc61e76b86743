package boot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Sentinels for a rejected config.json (CONTRACTS §1.10). Every error text
// is safe for the status line: it names the rule and, at most, a key made
// printable and short.
var (
	ErrConfigSize         = errors.New("config.json has the wrong size")
	ErrConfigNUL          = errors.New("config.json contains a NUL byte")
	ErrConfigUTF8         = errors.New("config.json is not valid UTF-8")
	ErrConfigJSON         = errors.New("config.json is not valid JSON")
	ErrConfigNotObject    = errors.New("config.json is not a JSON object")
	ErrConfigDuplicateKey = errors.New("config.json repeats a key")
	ErrConfigRejectedKey  = errors.New("config.json sets a key that is not allowed")
)

// maxConfigDepth bounds nesting; real configs are a few levels deep.
const maxConfigDepth = 64

// CanonicalKey is how config keys are compared: lower case, '_' -> '-'.
func CanonicalKey(k string) string {
	return strings.ReplaceAll(strings.ToLower(k), "_", "-")
}

// ValidateConfig checks operator config bytes against rules: size within
// [MinBytes, MaxBytes], no NUL, valid UTF-8, one JSON object and nothing
// after it, no key repeated within an object (compared canonicalised, so
// "a_b" and "A-B" collide: two readers could pick different ones), no
// RejectedTopKeys at the top level and no RejectedAnyDepthKeys anywhere,
// arrays included.
func ValidateConfig(b []byte, rules ConfigRules) error {
	if len(b) < rules.MinBytes || len(b) > rules.MaxBytes {
		return fmt.Errorf("%w: %d bytes, allowed %d..%d", ErrConfigSize, len(b), rules.MinBytes, rules.MaxBytes)
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return ErrConfigNUL
	}
	if !utf8.Valid(b) {
		return ErrConfigUTF8
	}
	if !json.Valid(b) {
		return ErrConfigJSON
	}
	top := map[string]bool{}
	for _, k := range rules.RejectedTopKeys {
		top[CanonicalKey(k)] = true
	}
	anyDepth := map[string]bool{}
	for _, k := range rules.RejectedAnyDepthKeys {
		anyDepth[CanonicalKey(k)] = true
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%w: %s", ErrConfigJSON, safeErr(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return ErrConfigNotObject
	}
	w := configWalker{dec: dec, top: top, anyDepth: anyDepth}
	if err := w.object(1); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the top-level object", ErrConfigJSON)
	}
	return nil
}

// configWalker walks the token stream after an opening delimiter.
type configWalker struct {
	dec           *json.Decoder
	top, anyDepth map[string]bool
}

func (w *configWalker) object(depth int) error {
	if depth > maxConfigDepth {
		return fmt.Errorf("%w: nested deeper than %d", ErrConfigJSON, maxConfigDepth)
	}
	seen := map[string]bool{}
	for w.dec.More() {
		tok, err := w.dec.Token()
		if err != nil {
			return fmt.Errorf("%w: %s", ErrConfigJSON, safeErr(err))
		}
		key, _ := tok.(string)
		ck := CanonicalKey(key)
		if seen[ck] {
			return fmt.Errorf("%w: %s", ErrConfigDuplicateKey, displayKey(key))
		}
		seen[ck] = true
		if w.anyDepth[ck] || (depth == 1 && w.top[ck]) {
			return fmt.Errorf("%w: %s", ErrConfigRejectedKey, displayKey(key))
		}
		if err := w.value(depth); err != nil {
			return err
		}
	}
	_, err := w.dec.Token() // '}'
	if err != nil {
		return fmt.Errorf("%w: %s", ErrConfigJSON, safeErr(err))
	}
	return nil
}

func (w *configWalker) array(depth int) error {
	if depth > maxConfigDepth {
		return fmt.Errorf("%w: nested deeper than %d", ErrConfigJSON, maxConfigDepth)
	}
	for w.dec.More() {
		if err := w.value(depth); err != nil {
			return err
		}
	}
	if _, err := w.dec.Token(); err != nil { // ']'
		return fmt.Errorf("%w: %s", ErrConfigJSON, safeErr(err))
	}
	return nil
}

func (w *configWalker) value(depth int) error {
	tok, err := w.dec.Token()
	if err != nil {
		return fmt.Errorf("%w: %s", ErrConfigJSON, safeErr(err))
	}
	switch tok {
	case json.Delim('{'):
		return w.object(depth + 1)
	case json.Delim('['):
		return w.array(depth + 1)
	}
	return nil
}

// displayKey renders an untrusted key for a status line: quoted, printable
// ASCII only, at most about 70 characters.
func displayKey(k string) string {
	const max = 64
	q := strconv.QuoteToASCII(k)
	if len(q) > max {
		q = q[:max] + `..."`
	}
	return q
}

// safeErr renders a decoder error without echoing input text.
func safeErr(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	return "malformed"
}
