package boot

import (
	"slices"
	"testing"
)

// kernelNextArgs is a second, independent implementation: a line-by-line
// port of lib/cmdline.c next_arg() working on a NUL-terminated byte buffer
// the way the C does, writing NULs in place. It returns KEY or KEY=VALUE.
func kernelNextArgs(raw string) []string {
	buf := append([]byte(raw), 0)
	str := func(at int) string {
		end := at
		for buf[end] != 0 {
			end++
		}
		return string(buf[at:end])
	}
	args := 0
	skip := func() {
		for buf[args] != 0 && isKernelSpace(buf[args]) {
			args++
		}
	}
	skip()
	var out []string
	for buf[args] != 0 {
		equals, inQuote, quoted := 0, false, false
		if buf[args] == '"' {
			args++
			inQuote, quoted = true, true
		}
		i := 0
		for ; buf[args+i] != 0; i++ {
			if isKernelSpace(buf[args+i]) && !inQuote {
				break
			}
			if equals == 0 && buf[args+i] == '=' {
				equals = i
			}
			if buf[args+i] == '"' {
				inQuote = !inQuote
			}
		}
		param, val := args, -1
		if equals != 0 {
			buf[args+equals] = 0
			val = args + equals + 1
			if buf[val] == '"' {
				val++
				if buf[args+i-1] == '"' {
					buf[args+i-1] = 0
				}
			}
		}
		if quoted && i > 0 && buf[args+i-1] == '"' {
			buf[args+i-1] = 0
		}
		end := args + i
		if buf[end] != 0 {
			buf[end] = 0
			args = end + 1
		} else {
			args = end
		}
		tok := str(param)
		if val >= 0 {
			tok += "=" + str(val)
		}
		out = append(out, tok)
		skip()
	}
	return out
}

func TestParseCmdlineMatchesKernel(t *testing.T) {
	for _, raw := range []string{
		"",
		"   ",
		"BOOT_IMAGE=/vmlinuz root=UUID=1234 ro quiet\n",
		`lapee.mode=debug console=ttyS0,115200 "quoted token" key="a b" tail`,
		`a="" b=" c="d e"f g=`,
		"=x ==y a==b",
		"\"unterminated value=\"x y",
		"tab\tsep\nnew\vvt\fff\rcr",
		"x\xa0y",
		"\"a=\"",
		"\"",
		"k=\"",
		"\"\"",
		"\x00",
		"a=1\x00b=2",
	} {
		got := ParseCmdline(raw).Tokens()
		want := kernelNextArgs(raw)
		if len(got) == 0 && len(want) == 0 {
			continue
		}
		if !slices.Equal(got, want) {
			t.Errorf("ParseCmdline(%q) = %q, kernel port says %q", raw, got, want)
		}
	}
}

func TestCmdlineQueries(t *testing.T) {
	c := ParseCmdline(`ro lapee.mode=debug lapee.debug=1 lapee.wifi=enabled x.flag=true ` +
		`y.flag=01 LAPEE_NO_TME=1 msg="hello world" lapee.mode=sb-provision bare`)
	if v, ok := c.Value("msg"); !ok || v != "hello world" {
		t.Errorf(`Value("msg") = %q, %v; want the quoted value as one token`, v, ok)
	}
	if v, _ := c.Value("lapee.mode"); v != "sb-provision" {
		t.Errorf("last occurrence must win, got %q", v)
	}
	if _, ok := c.Value("bare"); ok {
		t.Error("a bare token has no value")
	}
	if _, ok := c.Value("lapee"); ok {
		t.Error("a key prefix must not match")
	}
	for key, want := range map[string]bool{"lapee.debug": true, "x.flag": false, "y.flag": false, "missing": false} {
		if got := c.Flag(key); got != want {
			t.Errorf("Flag(%q) = %v, want %v", key, got, want)
		}
	}
	for tok, want := range map[string]bool{"LAPEE_NO_TME=1": true, "LAPEE_NO_TME": false,
		"LAPEE_NO_TME=10": false, "bare": true, "ro": true, "r": false, "msg=hello world": true} {
		if got := c.Has(tok); got != want {
			t.Errorf("Has(%q) = %v, want %v", tok, got, want)
		}
	}
	if ParseCmdline("LAPEE_NO_TME=10").Has("LAPEE_NO_TME=1") {
		t.Error("Has must match whole tokens only")
	}
}

func TestCmdlineMode(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want Mode
	}{
		{"", ModeProd},
		{"lapee.mode=prod", ModeProd},
		{"lapee.mode=debug", ModeDebug},
		{"lapee.mode=sb-provision", ModeSBProvision},
		{"lapee.mode=DEBUG", ModeProd},
		{"lapee.mode=debug lapee.mode=bogus", ModeProd},
		{"lapee.mode", ModeProd},
		{"xlapee.mode=debug", ModeProd},
		{"inert.mode=debug", ModeProd},
		{`"lapee.mode=debug"`, ModeDebug},
	} {
		if got := ParseCmdline(tc.raw).Mode("lapee"); got != tc.want {
			t.Errorf("Mode(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

func FuzzParseCmdline(f *testing.F) {
	f.Add(`lapee.mode=debug "a b" k="v w" LAPEE_NO_TME=1`)
	f.Add("\"\"=\" x")
	f.Fuzz(func(t *testing.T, raw string) {
		c := ParseCmdline(raw)
		got := c.Tokens()
		want := kernelNextArgs(raw)
		if !(len(got) == 0 && len(want) == 0) && !slices.Equal(got, want) {
			t.Fatalf("ParseCmdline(%q) = %q, kernel port says %q", raw, got, want)
		}
		switch c.Mode("lapee") {
		case ModeProd, ModeDebug, ModeSBProvision:
		default:
			t.Fatalf("Mode returned %q", c.Mode("lapee"))
		}
	})
}
