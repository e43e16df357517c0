package mask

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"unsafe"
)

// Span is a half-open byte range [Start, End) of a text.
type Span struct {
	Start, End int
}

// Len is the number of bytes the span covers.
func (s Span) Len() int { return s.End - s.Start }

// A Detector finds sensitive values in a text. Find returns the byte spans
// of the values it recognises, sorted by Start and non-overlapping, or nil.
// A Detector must be safe for concurrent use and must not retain s.
type Detector interface {
	Name() string
	Find(s string) []Span
}

// builtin is implemented by the detectors of this package. A Scanner
// computes the text's statistics once and hands them to each of them,
// rather than letting every detector count digits again.
type builtin interface {
	Detector
	// find appends the spans it finds in s to out.
	find(out []Span, s string, st textStats) []Span
}

// Builtin names, as used in configuration (`detectors: [email, us_ssn]`).
const (
	DetectEmail      = "email"
	DetectPhone      = "phone"
	DetectCreditCard = "credit_card"
	DetectUSSSN      = "us_ssn"
	DetectIBAN       = "iban"
	DetectIP         = "ip"
	DetectJWT        = "jwt"
	DetectAPIKey     = "api_key"
	DetectPrivateKey = "private_key"
)

var builtins = []builtin{
	emailDetector{},
	phoneDetector{},
	cardDetector{},
	ssnDetector{},
	ibanDetector{},
	ipDetector{},
	jwtDetector{},
	apiKeyDetector{},
	privateKeyDetector{},
}

// Builtin returns the built-in detector with the given name.
func Builtin(name string) (Detector, bool) {
	for _, d := range builtins {
		if d.Name() == name {
			return d, true
		}
	}
	return nil, false
}

// BuiltinNames lists the names Builtin accepts, in a stable order.
func BuiltinNames() []string {
	names := make([]string, len(builtins))
	for i, d := range builtins {
		names[i] = d.Name()
	}
	return names
}

// Errors returned by the constructors; classify with errors.Is.
var (
	// ErrEmptyMatch: a custom pattern can match the empty string, so it
	// would report zero-width hits (or, worse, be a typo that matches
	// nothing useful).
	ErrEmptyMatch = errors.New("pattern can match the empty string")
	// ErrUnknownStyle: the masking style is not one of redact, partial,
	// hash, null.
	ErrUnknownStyle = errors.New("unknown masking style")
	// ErrWeakKey: the hash style's key is missing or shorter than
	// MinHashKeyLen bytes.
	ErrWeakKey = errors.New("hash key too short")
)

// maxPatternLen bounds a custom pattern; Go's regexp already bounds the
// compiled program, this keeps configuration errors readable.
const maxPatternLen = 4096

// regexDetector is a custom detector from configuration.
type regexDetector struct {
	name string
	re   *regexp.Regexp
	// group is the index of the capture group named "mask", or 0 to mask
	// the whole match.
	group int
}

// Regex returns a detector that reports the matches of a Go regular
// expression (RE2 syntax, so matching is linear in the text length whatever
// the pattern). If the pattern has a capture group named "mask", only that
// group is reported, which lets a pattern require a label without masking it:
//
//	employee_id[=:]\s*(?P<mask>E\d{6})
//
// Patterns that can match the empty string are rejected with ErrEmptyMatch.
func Regex(name, pattern string) (Detector, error) {
	if name == "" {
		return nil, errors.New("mask.Regex: empty detector name")
	}
	if len(pattern) > maxPatternLen {
		return nil, fmt.Errorf("mask.Regex %q: pattern longer than %d bytes", name, maxPatternLen)
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("mask.Regex %q: %w", name, err)
	}
	d := &regexDetector{name: name, re: re}
	d.group = re.SubexpIndex("mask")
	if d.group < 0 {
		d.group = 0
	}
	// Nullability is decided on the syntax tree rather than by trying the
	// pattern on "": `\b` or `(?m)^` match no text of their own but still
	// produce zero-width hits inside other texts.
	tree, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, fmt.Errorf("mask.Regex %q: %w", name, err)
	}
	target := tree
	if d.group > 0 {
		target = findCapture(tree, d.group)
	}
	if target == nil || nullable(tree.Simplify()) || nullable(target.Simplify()) {
		return nil, fmt.Errorf("mask.Regex %q: %w", name, ErrEmptyMatch)
	}
	return d, nil
}

func (d *regexDetector) Name() string { return d.name }

func (d *regexDetector) Find(s string) []Span {
	var out []Span
	for _, m := range d.re.FindAllStringSubmatchIndex(s, -1) {
		a, b := m[2*d.group], m[2*d.group+1]
		if a < 0 || b <= a {
			continue // the mask group did not take part, or matched nothing
		}
		out = append(out, Span{a, b})
	}
	// Matches of the whole pattern never overlap, but their "mask"
	// groups are sub-ranges and stay ordered, so out is already sorted
	// and disjoint.
	return out
}

// nullable reports whether re can match the empty string.
func nullable(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpNoMatch, syntax.OpLiteral, syntax.OpCharClass,
		syntax.OpAnyCharNotNL, syntax.OpAnyChar:
		return re.Op == syntax.OpLiteral && len(re.Rune) == 0
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine,
		syntax.OpBeginText, syntax.OpEndText, syntax.OpWordBoundary,
		syntax.OpNoWordBoundary, syntax.OpStar, syntax.OpQuest:
		return true
	case syntax.OpCapture, syntax.OpPlus:
		return nullable(re.Sub[0])
	case syntax.OpRepeat:
		return re.Min == 0 || nullable(re.Sub[0])
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if !nullable(sub) {
				return false
			}
		}
		return true
	case syntax.OpAlternate:
		return slices.ContainsFunc(re.Sub, nullable)
	}
	return true // unknown op: assume the worst
}

func findCapture(re *syntax.Regexp, index int) *syntax.Regexp {
	if re.Op == syntax.OpCapture && re.Cap == index {
		return re
	}
	for _, sub := range re.Sub {
		if c := findCapture(sub, index); c != nil {
			return c
		}
	}
	return nil
}

// textStats are what the prefilters look at, gathered in one pass over the
// text and shared by all built-in detectors of a Scanner. Each field is a
// necessary condition for some detector, so a text that fails it is not
// read again by that detector.
type textStats struct {
	digits int
	dots   int
	colons int
	dashes int
	ats    int
	plus   int
	// chain is the longest run of digits joined by at most maxChainGap
	// consecutive separators from " -.()+": every card, SSN and phone
	// number lies within one such run.
	chain int
	// dotDigits counts digit '.' digit (IPv4 needs three).
	dotDigits int
	// ibanHeads counts letter letter digit digit (an IBAN's country code
	// and check digits).
	ibanHeads int
	// jwtHeads counts "ey" and "ew" at the start of a token (a JWT's
	// header is base64url JSON, which begins so).
	jwtHeads int
}

// maxChainGap is the most separators between two digit groups that still
// join them into one chain. Phone numbers put three there ("(415) (555)"
// reads ") (" — found by FuzzScan); a larger gap only lets more texts
// reach the detectors, never changes what they find.
const maxChainGap = 4

func statsOf(s string) textStats {
	var st textStats
	cur, gap := 0, 0
	for i := 0; i < len(s); i++ {
		k := statClass[s[i]]
		if k == 0 { // most bytes of most texts: a branch the CPU predicts
			cur, gap = 0, 0
			continue
		}
		switch k {
		case scDigit:
			st.digits++
			cur++
			gap = 0
			st.chain = max(st.chain, cur)
			if i >= 2 {
				switch p := s[i-1]; {
				case p == '.':
					if isDigit(s[i-2]) {
						st.dotDigits++
					}
				case isDigit(p):
					if i >= 3 && isAlpha(s[i-2]) && isAlpha(s[i-3]) {
						st.ibanHeads++
					}
				}
			}
		case scYW:
			cur, gap = 0, 0
			if i >= 1 && s[i-1] == 'e' && (i < 2 || !isB64URL(s[i-2]) && s[i-2] != '.') {
				st.jwtHeads++
			}
		case scDot:
			st.dots++
			if gap++; gap > maxChainGap {
				cur = 0
			}
		case scDash:
			st.dashes++
			if gap++; gap > maxChainGap {
				cur = 0
			}
		case scSep:
			if gap++; gap > maxChainGap {
				cur = 0
			}
		case scPlus:
			st.plus++
			if gap++; gap > maxChainGap {
				cur = 0
			}
		case scColon:
			st.colons++
			cur, gap = 0, 0
		case scAt:
			st.ats++
			cur, gap = 0, 0
		}
	}
	return st
}

const (
	scDigit = 1 + iota
	scDot
	scColon
	scDash
	scAt
	scPlus
	scSep // ' ', '(', ')'
	scYW  // 'y', 'w'
)

var statClass = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = scDigit
	}
	t['.'], t[':'], t['-'], t['@'], t['+'] = scDot, scColon, scDash, scAt, scPlus
	t[' '], t['('], t[')'] = scSep, scSep, scSep
	t['y'], t['w'] = scYW, scYW
	return t
}()

// Byte classes. Only ASCII counts as a word character: a number glued to
// Japanese or Cyrillic text ("カード4111111111111111") is still a number,
// while one glued to ASCII letters ("abc4111…", a hex digest) is part of
// an identifier.
func isDigit(c byte) bool { return c-'0' < 10 }
func isAlpha(c byte) bool { return (c|0x20)-'a' < 26 }
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }
func isWord(c byte) bool  { return isAlnum(c) || c == '_' }
func isUpper(c byte) bool { return c-'A' < 26 }

// numLeftOK reports whether a number may start at i: the byte before must
// not continue a word, nor join a longer number through a '.', '-', ':' or
// '/' (so "1.2.3.4.5", "2024-01-02", "10:11:12" and the tail of a UUID are
// not entered in the middle).
func numLeftOK(s string, i int) bool {
	if i == 0 {
		return true
	}
	c := s[i-1]
	if isWord(c) {
		return false
	}
	switch c {
	case '.', '-', ':', '/':
		return i < 2 || !isDigit(s[i-2])
	}
	return true
}

// numRightOK is numLeftOK's mirror for a number ending at j.
func numRightOK(s string, j int) bool {
	if j >= len(s) {
		return true
	}
	c := s[j]
	if isWord(c) {
		return false
	}
	switch c {
	case '.', '-', ':', '/':
		return j+1 >= len(s) || !isDigit(s[j+1])
	}
	return true
}

// normalizeSpans clamps spans to [0, n), drops empty ones, sorts them and
// merges overlapping ones. It returns spans itself when it is already in
// that form, so the common case allocates nothing.
func normalizeSpans(spans []Span, n int) []Span {
	ok := true
	prevEnd := 0
	for _, sp := range spans {
		if sp.Start < prevEnd || sp.Start >= sp.End || sp.End > n {
			ok = false
			break
		}
		prevEnd = sp.End
	}
	if ok {
		return spans
	}
	out := make([]Span, 0, len(spans))
	for _, sp := range spans {
		sp.Start = max(sp.Start, 0)
		sp.End = min(sp.End, n)
		if sp.Start < sp.End {
			out = append(out, sp)
		}
	}
	return sortMerge(out)
}

// sortMerge sorts spans in place and merges overlapping ones, returning
// the shortened slice. Detectors whose matchers can overlap (ip, api_key)
// use it on the spans they appended.
func sortMerge(spans []Span) []Span {
	slices.SortFunc(spans, func(a, b Span) int { return a.Start - b.Start })
	merged := spans[:0]
	for _, sp := range spans {
		if k := len(merged) - 1; k >= 0 && sp.Start < merged[k].End {
			merged[k].End = max(merged[k].End, sp.End)
			continue
		}
		merged = append(merged, sp)
	}
	return merged
}

// hasPrefixFold is strings.HasPrefix, ASCII case-insensitively; prefix must
// be lower case.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := s[i]
		if isUpper(c) {
			c |= 0x20
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// unsafeBytes lends s's bytes to a function that only reads them and keeps
// no reference (a decoder, a hash), saving the copy []byte(s) makes.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// Compile-time interface guards.
var (
	_ Detector = (*regexDetector)(nil)
	_ builtin  = emailDetector{}
	_ builtin  = phoneDetector{}
	_ builtin  = cardDetector{}
	_ builtin  = ssnDetector{}
	_ builtin  = ibanDetector{}
	_ builtin  = ipDetector{}
	_ builtin  = jwtDetector{}
	_ builtin  = apiKeyDetector{}
	_ builtin  = privateKeyDetector{}
)
