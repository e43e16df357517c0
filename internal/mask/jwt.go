package mask

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// jwtDetector finds JSON Web Tokens in compact serialisation: three
// base64url segments separated by dots (RFC 7515 §7.1, JWS), or five (RFC
// 7516 §7.1, JWE), whose first segment decodes to a JSON object with a
// string "alg" member (RFC 7515 §4.1.1). The payload and signature may be
// empty (unsecured and detached-payload tokens are still credentials or
// claims worth hiding).
//
// A header is a JSON object, so it starts with '{' and its encoding with
// "ey" ('{' then '"' or ' ') or "ew" ('{' then a newline or tab); only
// runs starting so are decoded. Not matched: dotted names ("www.example.com",
// "eyes.on.you"), tokens whose header is not JSON or lacks "alg", runs with
// four or more than five segments.
type jwtDetector struct{}

func (jwtDetector) Name() string { return DetectJWT }

func (d jwtDetector) Find(s string) []Span {
	return d.find(nil, s, statsOf(s))
}

// jwtMaxHeader bounds the header we decode; real headers are well under
// 1 KiB (a JWK or x5c chain can make them a few KiB).
const jwtMaxHeader = 16 << 10

func (jwtDetector) find(out []Span, s string, st textStats) []Span {
	if st.jwtHeads == 0 || st.dots < 2 {
		return out
	}
	for i := 0; i < len(s); {
		k := strings.IndexByte(s[i:], 'e')
		if k < 0 {
			break
		}
		p := i + k
		if p+1 < len(s) && (s[p+1] == 'y' || s[p+1] == 'w') && (p == 0 || !isB64URL(s[p-1]) && s[p-1] != '.') {
			if end, ok := matchJWT(s, p); ok {
				out = append(out, Span{p, end})
				i = end
				continue
			}
		}
		i = p + 1
	}
	return out
}

func isB64URL(c byte) bool { return isAlnum(c) || c == '-' || c == '_' }

func matchJWT(s string, p int) (int, bool) {
	// Segment boundaries: seg[k] = s[bounds[k]:bounds[k+1]-1].
	var dots [5]int
	nd := 0
	j := p
	for {
		for j < len(s) && isB64URL(s[j]) {
			j++
		}
		if j < len(s) && s[j] == '.' && nd < len(dots) {
			dots[nd] = j
			nd++
			j++
			continue
		}
		break
	}
	// A trailing '.' with nothing after it ends a sentence rather than
	// starting a segment, unless it is an unsecured JWS's empty signature.
	end := j
	if nd == 3 && dots[2] == j-1 || nd == 5 && dots[4] == j-1 {
		nd--
		end--
	}
	if nd != 2 && nd != 4 {
		return 0, false
	}
	if j < len(s) && s[j] == '.' {
		return 0, false // more than five segments
	}
	header := s[p:dots[0]]
	if len(header) > jwtMaxHeader {
		return 0, false
	}
	var buf [512]byte
	var raw []byte
	if n := base64.RawURLEncoding.DecodedLen(len(header)); n > len(buf) {
		raw = make([]byte, n)
	} else {
		raw = buf[:n]
	}
	n, err := base64.RawURLEncoding.Decode(raw, unsafeBytes(header))
	if err != nil || !hasStringMember(raw[:n], "alg") {
		return 0, false
	}
	return end, true
}

// hasStringMember reports whether raw is a JSON object with a member name
// whose value is a string. It validates with json.Valid and then walks the
// top level by hand, which, unlike json.Unmarshal, allocates nothing.
func hasStringMember(raw []byte, name string) bool {
	// An object starts with '{' and ends with '}'; checking that first
	// keeps json.Valid, whose errors allocate, for likely candidates.
	if t := bytes.TrimSpace(raw); len(t) < 2 || t[0] != '{' || t[len(t)-1] != '}' || !json.Valid(raw) {
		return false
	}
	i := skipWS(raw, 0)
	if raw[i] != '{' {
		return false
	}
	i++
	for {
		i = skipWS(raw, i)
		if raw[i] == '}' {
			return false
		}
		ks := i
		i = skipString(raw, i)
		key := raw[ks+1 : i-1]
		i = skipWS(raw, i) + 1 // ':'
		i = skipWS(raw, i)
		if bytes.IndexByte(key, '\\') >= 0 {
			// An escaped member name ("\u0061lg"): let encoding/json
			// decode it rather than reimplementing unescaping.
			var m map[string]json.RawMessage
			// A copy, so that raw (a stack buffer) does not escape.
			if json.Unmarshal(bytes.Clone(raw), &m) != nil {
				return false
			}
			v := m[name]
			return len(v) > 0 && v[0] == '"'
		}
		if string(key) == name && raw[i] == '"' {
			return true
		}
		i = skipValue(raw, i)
		i = skipWS(raw, i)
		if raw[i] != ',' {
			return false
		}
		i++
	}
}

// The skip helpers walk JSON that json.Valid accepted, so they need no
// bounds or syntax checks of their own beyond those below.

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	for i++; b[i] != '"'; i++ {
		if b[i] == '\\' {
			i++
		}
	}
	return i + 1
}

func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
	}
	for i < len(b) && !strings.ContainsRune(",}] \t\r\n", rune(b[i])) {
		i++
	}
	return i
}
