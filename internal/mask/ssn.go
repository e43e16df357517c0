package mask

import "bytes"

// ssnDetector finds US Social Security numbers: AAA-GG-SSSS with dashes or
// spaces, and nine bare digits only right after a label ("SSN 123456789",
// `"ssn": "123456789"`, "social security number: 123456789"), because
// nine bare digits are far more often an order or account number.
//
// Numbers the Social Security Administration never issues are rejected
// (SSA, "Social Security Number Randomization", 2011): area 000, 666 and
// 900–999 (the last are ITINs), group 00, serial 0000.
type ssnDetector struct{}

func (ssnDetector) Name() string { return DetectUSSSN }

func (d ssnDetector) Find(s string) []Span {
	return d.find(nil, s, statsOf(s))
}

func (ssnDetector) find(out []Span, s string, st textStats) []Span {
	if st.chain < 9 {
		return out
	}
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		if numLeftOK(s, i) {
			if end, ok := matchSSN(s, i); ok {
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

func matchSSN(s string, i int) (int, bool) {
	var buf [3]digitGroup
	gs, ok := readGroups(s, i, " -", 9, buf[:])
	if !ok || len(gs) == 0 {
		return 0, false
	}
	l := func(k int) int { return gs[k].end - gs[k].start }
	var d [9]byte
	var end int
	switch {
	case len(gs) == 3 && l(0) == 3 && l(1) == 2 && l(2) == 4:
		end = gs[2].end
		n := 0
		for _, g := range gs {
			n += copy(d[n:], s[g.start:g.end])
		}
	case l(0) == 9 && ssnLabelBefore(s, i):
		end = gs[0].end
		copy(d[:], s[i:end])
	default:
		return 0, false
	}
	if !numRightOK(s, end) {
		return 0, false
	}
	area := int(d[0]-'0')*100 + int(d[1]-'0')*10 + int(d[2]-'0')
	if area == 0 || area == 666 || area >= 900 {
		return 0, false
	}
	if string(d[3:5]) == "00" || string(d[5:9]) == "0000" {
		return 0, false
	}
	return end, true
}

// ssnLabelWindow is how far back a label may be, separators included.
const ssnLabelWindow = 40

// ssnLabelBefore reports whether the digits at i follow a label that says
// they are a Social Security number: "SSN", "SSN#", "SSN no.", "ssn_number",
// "social security number", "Social-Security-No:" and the like, followed by
// any of ` :=#"'` (so JSON and key=value forms count).
func ssnLabelBefore(s string, i int) bool {
	// Lower-case the window into a stack buffer, with '_' and '-' read
	// as spaces, so the check allocates nothing.
	var buf [ssnLabelWindow]byte
	src := s[max(0, i-ssnLabelWindow):i]
	for k := 0; k < len(src); k++ {
		c := src[k]
		switch {
		case isUpper(c):
			c |= 0x20
		case c == '_' || c == '-':
			c = ' '
		}
		buf[k] = c
	}
	w := buf[:len(src)]
	trim := func(w []byte) []byte { return bytes.TrimRight(w, " \t\r\n:=#\"'.") }
	endsWithWord := func(w []byte, word string) bool {
		return bytes.HasSuffix(w, []byte(word)) && (len(w) == len(word) || !isAlpha(w[len(w)-len(word)-1]))
	}
	w = trim(w)
	for _, suffix := range []string{"number", "num", "no"} {
		if endsWithWord(w, suffix) {
			w = trim(w[:len(w)-len(suffix)])
			break
		}
	}
	for _, label := range []string{"ssn", "social security", "soc sec"} {
		if endsWithWord(w, label) {
			return true
		}
	}
	return false
}
