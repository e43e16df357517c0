package mask

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// emailDetector finds addresses of the form local@domain.tld.
//
// The local part is the practical subset of RFC 5322 atext that real
// addresses use (letters, digits, '.', '_', '%', '+', '-') plus non-ASCII
// letters (RFC 6531) outside scripts written without spaces; leading dots
// are trimmed. The domain is two or more DNS labels (RFC 1035 §2.3.1: letters,
// digits, inner hyphens, at most 63 bytes) whose last label is alphabetic
// (or an IDNA "xn--" label), so that package pins ("lodash@4.17.21"),
// digests ("image@sha256:…") and hosts without a dot ("root@localhost")
// are not addresses. A small list of file extensions that are not
// top-level domains stops "icon@2x.png". Domains are matched in ASCII
// (IDNA "xn--" form); an address with a non-ASCII domain is not found.
type emailDetector struct{}

func (emailDetector) Name() string { return DetectEmail }

func (d emailDetector) Find(s string) []Span {
	return d.find(nil, s, statsOf(s))
}

func (emailDetector) find(out []Span, s string, st textStats) []Span {
	if st.ats == 0 {
		return out
	}
	from := 0 // a match never reaches back before the end of the previous one
	for i := 0; i < len(s); {
		k := strings.IndexByte(s[i:], '@')
		if k < 0 {
			break
		}
		at := i + k
		// The left scan stops at the previous '@' (not a local
		// character), so all left scans together read s once.
		ls := localStart(s, from, at)
		for ls < at && s[ls] == '.' {
			ls++
		}
		if ls < at && s[at-1] != '.' {
			if end, ok := scanDomain(s, at+1); ok {
				out = append(out, Span{ls, end})
				from, i = end, end
				continue
			}
		}
		i = at + 1
	}
	return out
}

// localStart scans left from the '@' at over the local part, no further
// than from. Non-ASCII letters count (RFC 6531 allows UTF-8 local parts,
// and "élodie@" must not keep its "é" in clear), except letters of scripts
// written without spaces between words (Han, kana, Thai), where the
// address is glued to the sentence before it: "連絡先はjohn@…".
func localStart(s string, from, at int) int {
	ls := at
	for ls > from {
		if c := s[ls-1]; c < utf8.RuneSelf {
			if !isEmailLocal(c) {
				break
			}
			ls--
			continue
		}
		r, size := utf8.DecodeLastRuneInString(s[from:ls])
		if r == utf8.RuneError || !(unicode.IsLetter(r) || unicode.IsMark(r)) ||
			unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Thai) {
			break
		}
		ls -= size
	}
	return ls
}

func isEmailLocal(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

// scanDomain reads a domain name starting at p and returns its end.
func scanDomain(s string, p int) (int, bool) {
	labels := 0
	var last string
	j := p
	for {
		ls := j
		for j < len(s) && (isAlnum(s[j]) || s[j] == '-') {
			j++
		}
		label := s[ls:j]
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return 0, false
		}
		labels++
		last = label
		// A dot continues the name only if a label follows; otherwise
		// it ends the sentence ("write to a@b.com.").
		if j+1 < len(s) && s[j] == '.' && isAlnum(s[j+1]) {
			j++
			continue
		}
		break
	}
	if labels < 2 || !isTLD(last) {
		return 0, false
	}
	return j, true
}

func isTLD(label string) bool {
	if len(label) < 2 {
		return false
	}
	if hasPrefixFold(label, "xn--") {
		return len(label) > 4
	}
	for i := 0; i < len(label); i++ {
		if !isAlpha(label[i]) {
			return false
		}
	}
	return !notTLD[strings.ToLower(label)]
}

// notTLD are file extensions seen after '@' in asset names ("logo@2x.png")
// that are not delegated top-level domains. Extensions that are real TLDs
// (.md, .py, .rs, .sh, .zip, .mov) stay addresses.
var notTLD = map[string]bool{
	"png": true, "jpg": true, "jpeg": true, "gif": true, "svg": true,
	"webp": true, "bmp": true, "ico": true, "tif": true, "tiff": true,
	"heic": true, "css": true, "js": true, "mjs": true, "ts": true,
	"tsx": true, "jsx": true, "json": true, "yaml": true, "yml": true,
	"txt": true, "tmp": true, "lock": true, "toml": true, "ini": true,
	"cfg": true, "cpp": true, "hpp": true, "pdf": true, "csv": true,
}
