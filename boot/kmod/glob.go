package kmod

// globMatch reports whether name matches pattern with fnmatch(3) semantics and
// no flags, which is what kmod uses for modules.alias: '*' matches any run of
// bytes (including '/', unlike path.Match), '?' one byte, '[...]' a class with
// '!' or '^' negation and ranges, and '\' escapes the next byte. A '[' without
// a closing ']' is an ordinary byte. Malformed patterns never panic.
func globMatch(pattern, name string) bool {
	p, n := 0, 0
	// Where to resume after the most recent '*': pattern index after the star,
	// and the name index the star currently swallows up to.
	starP, starN := -1, 0
	for n < len(name) {
		if p < len(pattern) {
			switch c := pattern[p]; c {
			case '*':
				starP, starN = p+1, n
				p++
				continue
			case '?':
				p++
				n++
				continue
			case '[':
				if ok, next, valid := globClass(pattern, p, name[n]); valid {
					if ok {
						p, n = next, n+1
						continue
					}
					break
				}
				if name[n] == '[' {
					p++
					n++
					continue
				}
			case '\\':
				if p+1 < len(pattern) {
					if pattern[p+1] == name[n] {
						p, n = p+2, n+1
						continue
					}
					break
				}
				if name[n] == '\\' {
					p++
					n++
					continue
				}
			default:
				if c == name[n] {
					p++
					n++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starN++
		p, n = starP, starN
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// globClass matches b against the bracket expression starting at pattern[open]
// == '['. valid is false when the class has no closing ']' (then '[' is
// literal); next is the index after the class.
func globClass(pattern string, open int, b byte) (ok bool, next int, valid bool) {
	i := open + 1
	negate := false
	if i < len(pattern) && (pattern[i] == '!' || pattern[i] == '^') {
		negate = true
		i++
	}
	matched := false
	first := true
	for i < len(pattern) {
		c := pattern[i]
		if c == ']' && !first {
			return matched != negate, i + 1, true
		}
		first = false
		if c == '\\' && i+1 < len(pattern) {
			i++
			c = pattern[i]
		}
		lo := c
		i++
		if i+1 < len(pattern) && pattern[i] == '-' && pattern[i+1] != ']' {
			hi := pattern[i+1]
			if hi == '\\' && i+2 < len(pattern) {
				hi = pattern[i+2]
				i++
			}
			i += 2
			if lo <= b && b <= hi {
				matched = true
			}
			continue
		}
		if b == lo {
			matched = true
		}
	}
	return false, 0, false
}
