package mask

// phoneDetector finds telephone numbers in three shapes:
//
//   - international: '+' (or a "00" prefix followed by a separator) and 8 to
//     15 digits (ITU-T E.164 §6: at most 15 digits), separated or not:
//     "+14155552671", "+1 (415) 555-2671", "+44 20 7946 0958", "0044 20 7946 0958";
//   - North American (NANP): 3-3-4 digits with a separator, the area code
//     possibly in parentheses and "1" possibly in front, area and exchange
//     codes starting 2–9: "(415) 555-2671", "415-555-2671", "415.555.2671",
//     "1-800-555-0199";
//   - national numbers with a trunk prefix 0, 9 to 11 digits in two or more
//     separated groups: "020 7946 0958", "01 23 45 67 89", "0412 345 678",
//     "(030) 1234 5678".
//
// Not matched, on purpose: bare national numbers without separators
// ("4155552671" is as likely a Unix timestamp, "012345678" an order
// number), dates and times ("2024-01-02 10:11:12" — the groups do not fit
// any shape, ':' and '/' are not separators), dotted numbers other than
// NANP 3.3.4 (IPv4 addresses, versions), and any digit run that continues
// through '-', '.', ':' or '/' past the matched part (UUIDs, ISBNs).
type phoneDetector struct{}

func (phoneDetector) Name() string { return DetectPhone }

func (d phoneDetector) Find(s string) []Span {
	return d.find(nil, s, statsOf(s))
}

func (phoneDetector) find(out []Span, s string, st textStats) []Span {
	// Nine digits at least, or eight after a '+' (E.164's shortest).
	if st.chain < 9 && (st.plus == 0 || st.chain < 8) {
		return out
	}
	for i := 0; i < len(s); {
		c := s[i]
		start := false
		switch {
		case c == '+' || c == '(':
			start = i+1 < len(s) && isDigit(s[i+1]) && numLeftOK(s, i)
		case isDigit(c):
			start = (i == 0 || !isDigit(s[i-1]) && s[i-1] != '+') && numLeftOK(s, i)
		}
		if start {
			if end, ok := matchPhone(s, i); ok {
				out = append(out, Span{i, end})
				i = end
				continue
			}
		}
		i++
	}
	return out
}

// phoneGroup is one run of digits in a candidate number.
type phoneGroup struct {
	ds, de int  // the digits
	end    int  // end of the group, after ')' if parenthesised
	paren  bool // written as "(415)"
	sep    byte // separator before the group: 0, ' ', '-' or '.'
}

const (
	phoneMaxGroups = 8
	phoneMaxDigits = 15 // E.164
)

// matchPhone parses the groups of a candidate starting at i and returns the
// end of the longest prefix of them that forms a phone number.
func matchPhone(s string, i int) (int, bool) {
	p := i
	intl := s[p] == '+'
	if intl {
		p++
	}
	var gs [phoneMaxGroups]phoneGroup
	ng := 0
	var sep byte
	for ng < phoneMaxGroups {
		q := p
		paren := q < len(s) && s[q] == '('
		if paren {
			q++
		}
		ds := q
		for q < len(s) && isDigit(s[q]) {
			q++
			if q-ds > phoneMaxDigits {
				return 0, false // a longer digit run is not a phone number
			}
		}
		de := q
		if de == ds {
			break
		}
		if paren {
			if q >= len(s) || s[q] != ')' {
				break
			}
			q++
		}
		gs[ng] = phoneGroup{ds: ds, de: de, end: q, paren: paren, sep: sep}
		ng++
		p = q
		if p >= len(s) {
			break
		}
		switch c := s[p]; {
		case (c == ' ' || c == '-' || c == '.') && p+1 < len(s) && (isDigit(s[p+1]) || s[p+1] == '('):
			sep = c
			p++
			continue
		case c == '(' || paren && isDigit(c):
			sep = 0 // "1(415)…", "(415)555-…"
			continue
		}
		break
	}
	// Prefer the longest reading; a shorter one only when the number is
	// followed by a space (numRightOK refuses a run continuing through
	// '-', '.', ':' or '/').
	for k := ng; k >= 1; k-- {
		end := gs[k-1].end
		if !numRightOK(s, end) {
			continue
		}
		if phoneShapeOK(s, gs[:k], intl) {
			return end, true
		}
	}
	return 0, false
}

func phoneShapeOK(s string, gs []phoneGroup, intl bool) bool {
	digits := 0
	for _, g := range gs {
		digits += g.de - g.ds
	}
	g0 := gs[0]
	first := s[g0.ds]
	if intl {
		return digits >= 8 && digits <= phoneMaxDigits && first != '0'
	}
	// "00" is the ITU international call prefix; it must be written as its
	// own group ("0044 20 …", "00 44 …") so zero-padded identifiers are not
	// taken for numbers.
	if first == '0' && g0.de-g0.ds >= 2 && s[g0.ds+1] == '0' {
		if g0.paren || len(gs) < 2 {
			return false
		}
		n := digits - 2
		nd := g0.ds + 2
		if nd == g0.de {
			nd = gs[1].ds
		}
		return n >= 8 && n <= phoneMaxDigits && s[nd] != '0'
	}
	if nanpOK(s, gs) {
		return true
	}
	if first == '0' {
		return trunkOK(s, gs, digits)
	}
	return false
}

// nanpOK: [1 sep] (AAA) EEE-SSSS or AAA-EEE-SSSS, North American Numbering
// Plan: area code and exchange code begin with 2–9.
func nanpOK(s string, gs []phoneGroup) bool {
	switch len(gs) {
	case 3:
	case 4:
		g := gs[0]
		if g.de-g.ds != 1 || s[g.ds] != '1' || g.paren {
			return false
		}
		if gs[1].sep == 0 && !gs[1].paren {
			return false
		}
		gs = gs[1:]
	default:
		return false
	}
	a, e, n := gs[0], gs[1], gs[2]
	if a.de-a.ds != 3 || e.de-e.ds != 3 || n.de-n.ds != 4 || e.paren || n.paren {
		return false
	}
	if s[a.ds] < '2' || s[e.ds] < '2' {
		return false
	}
	if a.paren {
		return (e.sep == 0 || e.sep == ' ' || e.sep == '-') && n.sep != 0
	}
	// 415-555-2671, 415.555.2671, 415 555 2671, 415 555-2671
	return e.sep != 0 && (n.sep == e.sep || e.sep == ' ' && n.sep == '-')
}

// trunkOK: a national number written with its trunk prefix 0, as most of
// Europe, Australia and much of Asia do, in separated groups.
func trunkOK(s string, gs []phoneGroup, digits int) bool {
	if len(gs) < 2 || digits < 9 || digits > 11 {
		return false
	}
	dots := 0
	for i, g := range gs {
		n := g.de - g.ds
		switch {
		case i == 0:
			if n < 2 || n > 5 {
				return false
			}
		case g.paren:
			return false
		case n < 2 || n > 4 && !(len(gs) == 2 && n <= 8): // "030 12345678"
			return false
		}
		if i > 0 && g.sep == '.' {
			dots++
		}
	}
	// Dots only in the French pairs style "01.23.45.67.89"; otherwise a
	// dotted run is a version or an address.
	if dots > 0 {
		if dots != len(gs)-1 {
			return false
		}
		for _, g := range gs {
			if g.de-g.ds != 2 {
				return false
			}
		}
	}
	return !looksLikeDate(s, gs)
}

// looksLikeDate reports whether the first three groups read as a day, month
// and year (02 01 2024) or year, month, day.
func looksLikeDate(s string, gs []phoneGroup) bool {
	if len(gs) < 3 {
		return false
	}
	n := func(g phoneGroup) (v int) {
		for i := g.ds; i < g.de; i++ {
			v = v*10 + int(s[i]-'0')
		}
		return v
	}
	l0, l1, l2 := gs[0].de-gs[0].ds, gs[1].de-gs[1].ds, gs[2].de-gs[2].ds
	year := func(v int) bool { return v >= 1900 && v <= 2199 }
	switch {
	case l0 == 2 && l1 == 2 && l2 == 4:
		a, b := n(gs[0]), n(gs[1])
		return year(n(gs[2])) && a >= 1 && b >= 1 && a <= 31 && b <= 31 && (a <= 12 || b <= 12)
	case l0 == 4 && l1 == 2 && l2 == 2:
		return year(n(gs[0])) && n(gs[1]) >= 1 && n(gs[1]) <= 12 && n(gs[2]) >= 1 && n(gs[2]) <= 31
	}
	return false
}
