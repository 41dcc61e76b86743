package appliance

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestStatusFragmentsStayOnOneValidLine(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes: the cut falls inside a rune
	for _, in := range []string{"a\nb\rc\x00d\x7fe", long, "short"} {
		out := sanitize(in)
		if strings.ContainsAny(out, "\n\r\x00\x7f") || !utf8.ValidString(out) || len(out) > 163 {
			t.Errorf("sanitize(%q) = %q", in, out)
		}
	}
	if got := sanitize(long); !strings.HasSuffix(got, "...") || !strings.HasPrefix(long, strings.TrimSuffix(got, "...")) {
		t.Errorf("long line cut to %q", got)
	}
}
