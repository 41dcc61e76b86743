package boot

import "strings"

// Mode is the boot mode read from "<ns>.mode" on the kernel command line.
type Mode string

// The modes of CONTRACTS §1.2. Anything else on the command line is ModeProd.
const (
	ModeProd        Mode = "prod"
	ModeDebug       Mode = "debug"
	ModeSBProvision Mode = "sb-provision"
)

// cmdlineParam is one whole token of the command line, split the way the
// kernel's next_arg splits it: Key is everything before the first '=', Value
// everything after it with the kernel's quote stripping applied.
type cmdlineParam struct {
	Key      string
	Value    string
	HasValue bool
}

// Cmdline is the kernel command line as whole tokens. Matching is on whole
// tokens only: "xlapee.mode=debug" never counts as "lapee.mode".
type Cmdline struct {
	params []cmdlineParam
}

// isKernelSpace mirrors the kernel's isspace(): the ASCII white space
// characters plus 0xA0, which lib/ctype.c also classes as space. Splitting
// exactly like the kernel means inert and the kernel agree on every token.
func isKernelSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\v', '\f', '\r', 0xA0:
		return true
	}
	return false
}

// ParseCmdline splits raw (the contents of /proc/cmdline) into tokens by the
// kernel's rules (lib/cmdline.c next_arg): white space outside double quotes
// separates tokens, a value starting with a quote loses it and its closing
// quote, and a token that starts with a quote loses that quote and a trailing
// one. It never fails: odd input just yields odd tokens.
func ParseCmdline(raw string) Cmdline {
	var c Cmdline
	s := raw
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i] // the kernel's string ends at a NUL
	}
	for {
		for len(s) > 0 && isKernelSpace(s[0]) {
			s = s[1:]
		}
		if len(s) == 0 {
			return c
		}
		var p cmdlineParam
		p, s = nextParam(s)
		c.params = append(c.params, p)
	}
}

// nextParam takes one token off the front of s (which starts with a
// non-space) and returns it with the rest of s.
func nextParam(s string) (cmdlineParam, string) {
	quoted := false
	if s[0] == '"' {
		s = s[1:]
		quoted = true
	}
	inQuote := quoted
	// As in the kernel, 0 means "no '=' yet": a '=' at position 0 is part
	// of the key and the next one splits.
	equals := 0
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if isKernelSpace(c) && !inQuote {
			break
		}
		if equals == 0 && c == '=' {
			equals = i
		}
		if c == '"' {
			inQuote = !inQuote
		}
	}
	tok := s[:i]
	rest := s[i:]
	// A token that began with a quote loses a trailing quote; so does a
	// value that began with one.
	endsQuote := len(tok) > 0 && tok[len(tok)-1] == '"'
	var p cmdlineParam
	if equals == 0 {
		if quoted && endsQuote {
			tok = tok[:len(tok)-1]
		}
		p.Key = tok
		return p, rest
	}
	p.Key = tok[:equals]
	p.HasValue = true
	val := tok[equals+1:]
	if strings.HasPrefix(val, `"`) {
		val = val[1:]
		if endsQuote && len(val) > 0 {
			val = val[:len(val)-1]
			endsQuote = false
		}
	}
	if quoted && endsQuote && len(val) > 0 && val[len(val)-1] == '"' {
		val = val[:len(val)-1]
	}
	p.Value = val
	return p, rest
}

// Tokens returns the tokens as KEY or KEY=VALUE strings (quotes stripped).
func (c Cmdline) Tokens() []string {
	out := make([]string, 0, len(c.params))
	for _, p := range c.params {
		out = append(out, p.String())
	}
	return out
}

func (p cmdlineParam) String() string {
	if !p.HasValue {
		return p.Key
	}
	return p.Key + "=" + p.Value
}

// Value returns the value of the last "key=value" token, as the kernel's
// own parameter handling lets the last occurrence win. A bare "key" token
// has no value and does not count.
func (c Cmdline) Value(key string) (string, bool) {
	for i := len(c.params) - 1; i >= 0; i-- {
		p := c.params[i]
		if p.HasValue && p.Key == key {
			return p.Value, true
		}
	}
	return "", false
}

// Flag is true only when the last value of key is exactly "1"
// (CONTRACTS §1.2: "lapee.debug=1"; "true", "yes" and "01" do not count).
func (c Cmdline) Flag(key string) bool {
	v, ok := c.Value(key)
	return ok && v == "1"
}

// Mode reads "<ns>.mode"; a missing or unknown value is ModeProd, so a typo
// can never weaken the boot.
func (c Cmdline) Mode(ns string) Mode {
	v, _ := c.Value(ns + ".mode")
	switch Mode(v) {
	case ModeDebug, ModeSBProvision:
		return Mode(v)
	}
	return ModeProd
}

// Has reports whether a token equal to token exists. "LAPEE_NO_TME=1" matches
// only the whole token LAPEE_NO_TME=1, never LAPEE_NO_TME=10 or a bare
// LAPEE_NO_TME.
func (c Cmdline) Has(token string) bool {
	for _, p := range c.params {
		if p.String() == token {
			return true
		}
	}
	return false
}
