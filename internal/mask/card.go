package mask

// cardDetector finds payment card numbers (ISO/IEC 7812 PANs): 13 to 19
// digits, bare or in the groupings cards are printed with (4-4-4-4,
// 4-4-4-4-3, 4-6-5 for American Express, 4-6-4 for Diners Club) separated
// by single spaces or dashes, whose issuer prefix and length belong to a
// known network (Visa, Mastercard, American Express, Discover, JCB, Diners
// Club, UnionPay) and whose Luhn check digit is right.
//
// Not matched: Luhn-invalid numbers, numbers with an unknown prefix (so a
// nanosecond timestamp "1704067200000000000" is not a card), other
// groupings, and digit runs that continue past the number through '-',
// '.', ':' or '/' (UUIDs and other identifiers).
type cardDetector struct{}

func (cardDetector) Name() string { return DetectCreditCard }

func (d cardDetector) Find(s string) []Span {
	return d.find(nil, s, statsOf(s))
}

func (cardDetector) find(out []Span, s string, st textStats) []Span {
	if st.chain < 13 {
		return out
	}
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		if numLeftOK(s, i) {
			if end, ok := matchCard(s, i); ok {
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

// digitGroup is a run of ASCII digits s[start:end].
type digitGroup struct{ start, end int }

// readGroups reads up to len(buf) digit groups from i, separated by one
// byte from seps, the same byte throughout. Groups longer than maxLen end
// the read with ok=false.
func readGroups(s string, i int, seps string, maxLen int, buf []digitGroup) (gs []digitGroup, ok bool) {
	gs = buf[:0]
	var sep byte
	p := i
	for len(gs) < cap(buf) {
		q := p
		for q < len(s) && isDigit(s[q]) {
			q++
			if q-p > maxLen {
				return gs, false
			}
		}
		if q == p {
			break
		}
		gs = append(gs, digitGroup{p, q})
		if q+1 >= len(s) || !isDigit(s[q+1]) {
			break
		}
		c := s[q]
		if sep == 0 {
			if !containsByte(seps, c) {
				break
			}
			sep = c
		} else if c != sep {
			break
		}
		p = q + 1
	}
	return gs, true
}

func containsByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}

func matchCard(s string, i int) (int, bool) {
	var buf [6]digitGroup
	gs, ok := readGroups(s, i, " -", 19, buf[:])
	if !ok {
		return 0, false
	}
	for k := len(gs); k >= 1; k-- {
		end := gs[k-1].end
		if !numRightOK(s, end) || !cardGroupingOK(gs[:k]) {
			continue
		}
		var d [19]byte
		n := 0
		for _, g := range gs[:k] {
			n += copy(d[n:], s[g.start:g.end])
		}
		if n >= 13 && n <= 19 && cardPrefixOK(d[:n]) && luhnOK(d[:n]) {
			return end, true
		}
	}
	return 0, false
}

func cardGroupingOK(gs []digitGroup) bool {
	if len(gs) == 1 {
		return true
	}
	l := func(i int) int { return gs[i].end - gs[i].start }
	if len(gs) == 3 && l(0) == 4 && l(1) == 6 && (l(2) == 5 || l(2) == 4) {
		return true // Amex 4-6-5, Diners 4-6-4
	}
	for i := range len(gs) - 1 {
		if l(i) != 4 {
			return false
		}
	}
	return l(len(gs)-1) <= 4
}

// cardPrefixOK checks the issuer identification number ranges and lengths
// the networks publish.
func cardPrefixOK(d []byte) bool {
	n := len(d)
	num := func(k int) int {
		v := 0
		for _, c := range d[:k] {
			v = v*10 + int(c-'0')
		}
		return v
	}
	p2, p3, p4 := num(2), num(3), num(4)
	switch {
	case d[0] == '4': // Visa
		return n == 13 || n == 16 || n == 19
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720: // Mastercard
		return n == 16
	case p2 == 34 || p2 == 37: // American Express
		return n == 15
	case p4 == 6011, p3 >= 644 && p3 <= 649, p2 == 65, p2 == 62: // Discover, UnionPay (incl. 622126–622925)
		return n >= 16 && n <= 19
	case p4 >= 3528 && p4 <= 3589: // JCB
		return n >= 16 && n <= 19
	case p3 >= 300 && p3 <= 305, p2 == 36, p2 == 38, p2 == 39: // Diners Club
		return n >= 14 && n <= 19
	}
	return false
}

// luhnOK is the ISO/IEC 7812-1 Annex B check.
func luhnOK(d []byte) bool {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}
