package kernel

// CompareVersions orders kernel versions the way dpkg orders version strings
// without epoch or revision: runs of digits compare numerically (so 6.1.0-10
// is newer than 6.1.0-9), other runs compare byte by byte with letters before
// other characters and '~' before everything, even the end of the string
// (6.1~rc1 is older than 6.1). It returns -1, 0 or +1.
func CompareVersions(a, b string) int {
	for a != "" || b != "" {
		var ra, rb string
		ra, a = splitRun(a, false)
		rb, b = splitRun(b, false)
		if c := compareText(ra, rb); c != 0 {
			return c
		}
		ra, a = splitRun(a, true)
		rb, b = splitRun(b, true)
		if c := compareNumber(ra, rb); c != 0 {
			return c
		}
	}
	return 0
}

// splitRun splits s into its leading run of digits (digits true) or
// non-digits, and the rest.
func splitRun(s string, digits bool) (run, rest string) {
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9') == digits {
		i++
	}
	return s[:i], s[i:]
}

// textOrder is dpkg's order of one byte: '~' first, then the end of the
// string (0), then letters, then everything else.
func textOrder(s string, i int) int {
	if i >= len(s) {
		return 0
	}
	c := s[i]
	switch {
	case c == '~':
		return -1
	case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
		return int(c)
	default:
		return int(c) + 256
	}
}

func compareText(a, b string) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		if x, y := textOrder(a, i), textOrder(b, i); x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// compareNumber compares digit runs of any length without overflowing.
func compareNumber(a, b string) int {
	for len(a) > 0 && a[0] == '0' {
		a = a[1:]
	}
	for len(b) > 0 && b[0] == '0' {
		b = b[1:]
	}
	switch {
	case len(a) != len(b):
		if len(a) < len(b) {
			return -1
		}
		return 1
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
