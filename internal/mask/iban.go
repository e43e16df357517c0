package mask

// ibanDetector finds International Bank Account Numbers (ISO 13616): a
// country code, two check digits and the national account number (BBAN),
// either in electronic form ("DE89370400440532013000") or in print form
// with a space after every four characters ("DE89 3704 0044 0532 0130 00").
// The length must be the one the SWIFT IBAN registry gives for the
// country, and the whole must pass the ISO 7064 mod-97-10 check (remainder
// 1), which a random string passes one time in 97.
//
// Not matched: unknown country codes, wrong lengths, wrong check digits,
// spaces anywhere but at four-character boundaries, and candidates glued
// to more letters or digits.
type ibanDetector struct{}

func (ibanDetector) Name() string { return DetectIBAN }

func (d ibanDetector) Find(s string) []Span {
	return d.find(nil, s, statsOf(s))
}

func (ibanDetector) find(out []Span, s string, st textStats) []Span {
	if st.ibanHeads == 0 {
		return out
	}
	for i := 0; i+4 <= len(s); i++ {
		if !isAlpha(s[i]) || !isAlpha(s[i+1]) || !isDigit(s[i+2]) || !isDigit(s[i+3]) {
			continue
		}
		if i > 0 && isAlnum(s[i-1]) {
			continue
		}
		if end, ok := matchIBAN(s, i); ok {
			out = append(out, Span{i, end})
			i = end - 1
		}
	}
	return out
}

const ibanMaxLen = 34

func matchIBAN(s string, i int) (int, bool) {
	want := ibanLength(s[i]|0x20, s[i+1]|0x20)
	if want == 0 {
		return 0, false
	}
	var buf [ibanMaxLen]byte
	n := 0
	j := i
	for n < want && j < len(s) {
		c := s[j]
		switch {
		case isAlnum(c):
			if isAlpha(c) {
				c &^= 0x20 // upper case
			}
			buf[n] = c
			n++
			j++
			continue
		case c == ' ' && n%4 == 0 && j+1 < len(s) && isAlnum(s[j+1]):
			j++
			continue
		}
		break
	}
	if n != want || j < len(s) && isAlnum(s[j]) {
		return 0, false
	}
	return j, ibanChecksumOK(buf[:n])
}

// ibanChecksumOK moves the first four characters to the end, reads letters
// as 10..35 and checks that the number is 1 modulo 97 (ISO 13616-1 §B).
func ibanChecksumOK(b []byte) bool {
	r := 0
	for k := range b {
		c := b[(k+4)%len(b)]
		if isDigit(c) {
			r = (r*10 + int(c-'0')) % 97
		} else {
			r = (r*100 + int(c-'A') + 10) % 97
		}
	}
	return r == 1
}

func ibanLength(a, b byte) int {
	if a-'a' >= 26 || b-'a' >= 26 {
		return 0
	}
	return int(ibanLengths[int(a-'a')*26+int(b-'a')])
}

// ibanLengths is the IBAN length per ISO 3166 country code, from the SWIFT
// IBAN registry (release 99, 2024), indexed by the code's two letters.
var ibanLengths = func() (t [26 * 26]uint8) {
	for cc, n := range map[string]uint8{
		"ad": 24, "ae": 23, "al": 28, "at": 20, "az": 28, "ba": 20, "be": 16,
		"bg": 22, "bh": 22, "bi": 27, "br": 29, "by": 28, "ch": 21, "cr": 22,
		"cy": 28, "cz": 24, "de": 22, "dj": 27, "dk": 18, "do": 28, "ee": 20,
		"eg": 29, "es": 24, "fi": 18, "fk": 18, "fo": 18, "fr": 27, "gb": 22,
		"ge": 22, "gi": 23, "gl": 18, "gr": 27, "gt": 28, "hr": 21, "hu": 28,
		"ie": 22, "il": 23, "iq": 23, "is": 26, "it": 27, "jo": 30, "kw": 30,
		"kz": 20, "lb": 28, "lc": 32, "li": 21, "lt": 20, "lu": 20, "lv": 21,
		"ly": 25, "mc": 27, "md": 24, "me": 22, "mk": 19, "mn": 20, "mr": 27,
		"mt": 31, "mu": 30, "ni": 28, "nl": 18, "no": 15, "om": 23, "pk": 24,
		"pl": 28, "ps": 29, "pt": 25, "qa": 29, "ro": 24, "rs": 22, "ru": 33,
		"sa": 24, "sc": 31, "sd": 18, "se": 24, "si": 19, "sk": 24, "sm": 27,
		"so": 23, "st": 25, "sv": 28, "tl": 23, "tn": 24, "tr": 26, "ua": 29,
		"va": 22, "vg": 24, "xk": 20, "ye": 30,
	} {
		t[int(cc[0]-'a')*26+int(cc[1]-'a')] = n
	}
	return t
}()
