package mask

import (
	"net/netip"
	"strings"
)

// ipDetector finds IPv4 and IPv6 addresses.
//
// IPv4: four decimal octets 0–255 in dotted-quad form without leading zeros
// (as net/netip accepts them; "010.1.1.1" is ambiguous between octal and
// decimal and is not matched), not part of a longer dotted number
// ("1.2.3.4.5", "10.0.19041.1") nor glued to letters ("v1.2.3.4"). A port
// or prefix length after it (":5432", "/24") is left in place.
//
// IPv6: a run of hex digits, colons and dots with at least two colons that
// net/netip parses (RFC 4291 §2.2 text forms, including "::" and embedded
// IPv4), not glued to letters or identifiers. Times ("10:11:12"), MAC
// addresses and C++/Rust paths ("std::vector") are not addresses. Zones
// ("%eth0") are not included in the span.
type ipDetector struct{}

func (ipDetector) Name() string { return DetectIP }

func (d ipDetector) Find(s string) []Span {
	return d.find(nil, s, statsOf(s))
}

func (ipDetector) find(out []Span, s string, st textStats) []Span {
	base := len(out)
	if st.dotDigits >= 3 {
		out = findIPv4(out, s)
	}
	n4 := len(out) - base
	if st.colons >= 2 {
		out = findIPv6(out, s)
	}
	if n4 > 0 && len(out)-base > n4 {
		// "::ffff:192.0.2.1" is found by both; keep the IPv6 span.
		out = out[:base+len(sortMerge(out[base:]))]
	}
	return out
}

func findIPv4(out []Span, s string) []Span {
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		if i == 0 || !isWord(s[i-1]) && s[i-1] != '.' {
			if end, ok := matchIPv4(s, i); ok {
				out = append(out, Span{i, end})
				i = end
				continue
			}
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	return out
}

func matchIPv4(s string, i int) (int, bool) {
	p := i
	for octet := 0; octet < 4; octet++ {
		if octet > 0 {
			if p >= len(s) || s[p] != '.' {
				return 0, false
			}
			p++
		}
		q := p
		v := 0
		for q < len(s) && isDigit(s[q]) && q-p < 4 {
			v = v*10 + int(s[q]-'0')
			q++
		}
		n := q - p
		if n == 0 || n > 3 || v > 255 || n > 1 && s[p] == '0' {
			return 0, false
		}
		p = q
	}
	// Not the start of a longer dotted number, nor glued to a word.
	if p < len(s) && (isWord(s[p]) || s[p] == '.' && p+1 < len(s) && isDigit(s[p+1])) {
		return 0, false
	}
	return p, true
}

func isHex(c byte) bool { return isDigit(c) || (c|0x20)-'a' < 6 }

func findIPv6(out []Span, s string) []Span {
	for i := 0; i < len(s); {
		c := s[i]
		if !isHex(c) && c != ':' {
			i++
			continue
		}
		if i > 0 && (isWord(s[i-1]) || s[i-1] == '.' || s[i-1] == ':') {
			i++
			continue
		}
		j := i
		colons := 0
		for j < len(s) && (isHex(s[j]) || s[j] == ':' || s[j] == '.') {
			if s[j] == ':' {
				colons++
			}
			j++
		}
		if end, ok := matchIPv6(s, i, j, colons); ok {
			out = append(out, Span{i, end})
		}
		i = j
	}
	return out
}

// matchIPv6 checks the candidate s[i:j], trimming sentence punctuation
// ("fe80::1." or "fe80::1: unreachable") that the run swallowed.
func matchIPv6(s string, i, j, colons int) (int, bool) {
	if colons < 2 || j < len(s) && isWord(s[j]) {
		return 0, false
	}
	for k := 0; k < 2 && j > i; k++ {
		cand := s[i:j]
		if cand != "::" && ipv6Shape(cand) {
			if a, err := netip.ParseAddr(cand); err == nil && a.Is6() {
				return j, true
			}
		}
		last := s[j-1]
		if last != '.' && (last != ':' || j-2 < i || s[j-2] == ':') {
			break
		}
		j--
	}
	return 0, false
}

// ipv6Shape is a cheap necessary condition for an IPv6 text form (RFC 4291
// §2.2), checked before netip.ParseAddr, whose errors allocate: groups of
// at most four hex digits, and either "::" or eight groups (seven colons,
// or six and a dotted IPv4 tail). Times ("10:11:12") and MAC addresses
// fail here.
func ipv6Shape(c string) bool {
	colons := strings.Count(c, ":")
	if colons < 2 {
		return false
	}
	dotted := strings.IndexByte(c, '.') >= 0
	if !strings.Contains(c, "::") && colons != 7 && (colons != 6 || !dotted) {
		return false
	}
	run := 0
	for k := 0; k < len(c); k++ {
		switch {
		case c[k] == ':':
			run = 0
		case c[k] == '.':
			run = 0 // the IPv4 tail is netip's to check
		default:
			if run++; run > 4 {
				return false
			}
		}
	}
	return true
}
