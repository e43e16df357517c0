package mask

import (
	"regexp"
	"strings"
)

// apiKeyDetector finds credentials whose issuer gave them a recognisable
// prefix, plus AWS secret access keys next to their label:
//
//   - AWS access key ids: AKIA or ASIA + 16 upper-case letters or digits
//     (AWS IAM, "Understanding unique ID prefixes");
//   - AWS secret access keys, 40 characters of [A-Za-z0-9/+], only after a
//     label such as aws_secret_access_key, AWS_SECRET_ACCESS_KEY= or
//     "SecretAccessKey": (unlabelled, they are indistinguishable from any
//     other 40-character base64 string, a git SHA-1 in base64 for instance);
//     only the value is reported, not the label;
//   - GitHub tokens: ghp_, gho_, ghu_, ghs_, ghr_ + at least 30 letters and
//     digits, github_pat_ + at least 22 (GitHub, "Behind GitHub's new
//     authentication token formats", 2021);
//   - Slack tokens: xoxb-, xoxp-, xoxa-, xoxr-, xoxs-, xoxe-, xapp- + at
//     least 10 of [A-Za-z0-9-];
//   - Stripe secret and restricted keys: sk_live_, rk_live_, sk_test_,
//     rk_test_ + at least 16 letters and digits (publishable pk_ keys are
//     public by design and not matched);
//   - GitLab personal access tokens glpat-, Google API keys AIza (39 in
//     all), and model-provider keys an agent is likely to meet: sk-ant-
//     (Anthropic), sk-proj- (OpenAI project keys), and sk- followed by at
//     least 32 characters that mix upper case, lower case and digits
//     (legacy OpenAI keys), so "sk-learn-compatible-…" prose is not a key.
//
// A prefix must start a word (the byte before is not a letter or digit);
// the key ends where its alphabet ends, and a key glued to more letters or
// digits than its format allows is not matched.
type apiKeyDetector struct{}

func (apiKeyDetector) Name() string { return DetectAPIKey }

func (d apiKeyDetector) Find(s string) []Span {
	return d.find(nil, s, statsOf(s))
}

// keyRule is one prefixed key format.
type keyRule struct {
	prefix   string
	alphabet func(byte) bool
	min, max int  // length of the part after the prefix
	mixed    bool // the part after the prefix must mix upper, lower and digits
}

func isUpperAlnum(c byte) bool { return isUpper(c) || isDigit(c) }
func isAlnumUnder(c byte) bool { return isAlnum(c) || c == '_' }
func isAlnumDash(c byte) bool  { return isAlnum(c) || c == '-' }

const noMax = 1 << 10

// keyRules, longest prefix first within each first byte so that sk-ant-
// is tried before sk-.
var keyRules = []keyRule{
	{prefix: "AKIA", alphabet: isUpperAlnum, min: 16, max: 16},
	{prefix: "ASIA", alphabet: isUpperAlnum, min: 16, max: 16},
	{prefix: "AIza", alphabet: isB64URL, min: 35, max: 35},
	{prefix: "github_pat_", alphabet: isAlnumUnder, min: 22, max: noMax},
	{prefix: "ghp_", alphabet: isAlnum, min: 30, max: noMax},
	{prefix: "gho_", alphabet: isAlnum, min: 30, max: noMax},
	{prefix: "ghu_", alphabet: isAlnum, min: 30, max: noMax},
	{prefix: "ghs_", alphabet: isAlnum, min: 30, max: noMax},
	{prefix: "ghr_", alphabet: isAlnum, min: 30, max: noMax},
	{prefix: "glpat-", alphabet: isB64URL, min: 20, max: noMax},
	{prefix: "xoxb-", alphabet: isAlnumDash, min: 10, max: noMax},
	{prefix: "xoxp-", alphabet: isAlnumDash, min: 10, max: noMax},
	{prefix: "xoxa-", alphabet: isAlnumDash, min: 10, max: noMax},
	{prefix: "xoxr-", alphabet: isAlnumDash, min: 10, max: noMax},
	{prefix: "xoxs-", alphabet: isAlnumDash, min: 10, max: noMax},
	{prefix: "xoxe-", alphabet: isAlnumDash, min: 10, max: noMax},
	{prefix: "xapp-", alphabet: isAlnumDash, min: 10, max: noMax},
	{prefix: "sk_live_", alphabet: isAlnum, min: 16, max: noMax},
	{prefix: "sk_test_", alphabet: isAlnum, min: 16, max: noMax},
	{prefix: "rk_live_", alphabet: isAlnum, min: 16, max: noMax},
	{prefix: "rk_test_", alphabet: isAlnum, min: 16, max: noMax},
	{prefix: "sk-ant-", alphabet: isB64URL, min: 32, max: noMax},
	{prefix: "sk-proj-", alphabet: isB64URL, min: 32, max: noMax},
	{prefix: "sk-", alphabet: isB64URL, min: 32, max: noMax, mixed: true},
}

// keyRulesByByte indexes keyRules by the prefix's first byte.
var keyRulesByByte = func() (t [256][]keyRule) {
	for _, r := range keyRules {
		t[r.prefix[0]] = append(t[r.prefix[0]], r)
	}
	return t
}()

// keyFirst marks the bytes a key prefix or the "secret" label starts with.
var keyFirst = func() (t [256]bool) {
	for _, r := range keyRules {
		t[r.prefix[0]] = true
	}
	t['s'], t['S'] = true, true
	return t
}()

// awsSecretRE finds a labelled AWS secret access key; only the value (group
// 1) is reported. Run only when the text contains "secret".
var awsSecretRE = regexp.MustCompile(`(?i)(?:aws[_\- ]?secret[_\- ]?(?:access[_\- ]?)?key|secret[_\- ]?access[_\- ]?key)["']?\s*(?:=>|[:=])\s*["']?([A-Za-z0-9/+]{40})`)

func (apiKeyDetector) find(out []Span, s string, _ textStats) []Span {
	base := len(out)
	sawSecret := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !keyFirst[c] {
			continue
		}
		if c|0x20 == 's' && !sawSecret && hasPrefixFold(s[i:], "secret") {
			sawSecret = true
		}
		if i > 0 && isAlnum(s[i-1]) {
			continue
		}
		for _, r := range keyRulesByByte[c] {
			if end, ok := matchKey(s, i, r); ok {
				out = append(out, Span{i, end})
				i = end - 1
				break
			}
		}
	}
	if sawSecret {
		for _, m := range awsSecretRE.FindAllStringSubmatchIndex(s, -1) {
			a, b := m[2], m[3]
			if b < len(s) && (isAlnum(s[b]) || s[b] == '/' || s[b] == '+' || s[b] == '=') {
				continue // longer than an AWS secret
			}
			out = append(out, Span{a, b})
		}
		out = out[:base+len(sortMerge(out[base:]))]
	}
	return out
}

func matchKey(s string, i int, r keyRule) (int, bool) {
	if !strings.HasPrefix(s[i:], r.prefix) {
		return 0, false
	}
	b := i + len(r.prefix)
	j := b
	for j < len(s) && r.alphabet(s[j]) && j-b <= r.max {
		j++
	}
	n := j - b
	if n < r.min || n > r.max || j < len(s) && isAlnum(s[j]) {
		return 0, false
	}
	if r.mixed {
		var up, lo, dg bool
		for k := b; k < j; k++ {
			c := s[k]
			up = up || isUpper(c)
			lo = lo || c-'a' < 26
			dg = dg || isDigit(c)
		}
		if !up || !lo || !dg {
			return 0, false
		}
	}
	return j, true
}

// privateKeyDetector finds PEM-armoured private keys (RFC 7468 §10, §11 and
// the PKCS#1, SEC 1, OpenSSH and OpenPGP variants): from a
// "-----BEGIN <label>-----" line whose label contains "PRIVATE KEY" through
// the matching "-----END <label>-----". Newlines may be real or escaped
// ("\n" inside a JSON string): only the markers are looked for.
//
// If the END marker is missing (a truncated column, a log line cut short)
// the span runs to the end of the text: key material must not leak because
// its frame is incomplete. Certificates, public keys and CSRs are not
// matched.
type privateKeyDetector struct{}

func (privateKeyDetector) Name() string { return DetectPrivateKey }

func (d privateKeyDetector) Find(s string) []Span {
	return d.find(nil, s, statsOf(s))
}

const (
	pemBegin       = "-----BEGIN "
	pemDashes      = "-----"
	pemMaxLabelLen = 64
)

func (privateKeyDetector) find(out []Span, s string, st textStats) []Span {
	if st.dashes < 2*len(pemDashes) {
		return out
	}
	for i := 0; i < len(s); {
		k := strings.Index(s[i:], pemBegin)
		if k < 0 {
			break
		}
		start := i + k
		ls := start + len(pemBegin)
		le := strings.Index(s[ls:min(len(s), ls+pemMaxLabelLen+len(pemDashes))], pemDashes)
		if le < 0 {
			i = ls
			continue
		}
		label := s[ls : ls+le]
		if !strings.Contains(label, "PRIVATE KEY") || strings.ContainsAny(label, "\r\n") {
			i = ls
			continue
		}
		bodyStart := ls + le + len(pemDashes)
		end := len(s)
		endMarker := "-----END " + label + pemDashes
		if e := strings.Index(s[bodyStart:], endMarker); e >= 0 {
			end = bodyStart + e + len(endMarker)
		}
		out = append(out, Span{start, end})
		i = end
	}
	return out
}
