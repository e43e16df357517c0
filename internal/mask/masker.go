package mask

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Style is a masking style, as written in configuration.
type Style string

const (
	// StyleRedact replaces the value with a fixed text, "[REDACTED]"
	// unless Options.Replacement says otherwise.
	StyleRedact Style = "redact"
	// StylePartial keeps the last Options.Keep characters (default 4)
	// and replaces every other letter and digit with '*', keeping
	// punctuation and spaces: "4111 1111 1111 1111" → "**** **** **** 1111".
	StylePartial Style = "partial"
	// StyleHash replaces the value with "h:" and the first 16 hex digits
	// of HMAC-SHA256(Options.Key, value): equal values mask equally under
	// one key, so joins, GROUP BY and COUNT(DISTINCT) still work, while
	// without the key the value cannot be recovered by hashing guesses.
	// 64 bits are shown: distinct values collide with even odds only past
	// about four billion of them.
	StyleHash Style = "hash"
	// StyleNull replaces the value with SQL NULL / JSON null; see
	// Masker.Null.
	StyleNull Style = "null"
)

const (
	// DefaultReplacement is what redact writes, and what null writes
	// inside free text, where a null cannot stand.
	DefaultReplacement = "[REDACTED]"
	// DefaultKeep is how many trailing characters partial keeps.
	DefaultKeep = 4
	// MinHashKeyLen is the shortest key the hash style accepts: 128 bits,
	// so the mask cannot be reversed by guessing the key.
	MinHashKeyLen = 16
	// hashPrefix marks a hashed value so it is not mistaken for data.
	hashPrefix = "h:"
	hashHexLen = 16
)

// Options tunes a style. Each field applies to one style and is ignored by
// the others; the zero value is valid for every style except hash.
type Options struct {
	// Replacement is the text redact writes (and null writes inside free
	// text). Empty means DefaultReplacement.
	Replacement string
	// Keep is how many trailing characters partial leaves in clear.
	// 0 means DefaultKeep; a negative value keeps none. Partial never
	// leaves more than half of a value in clear, whatever Keep says, so a
	// short value is not shown whole.
	Keep int
	// Key is the HMAC key of the hash style, at least MinHashKeyLen bytes.
	// Required for hash. Keep it secret and stable: changing it changes
	// every masked value.
	Key []byte
}

// A Masker produces the masked form of a value. Build one with NewMasker
// when the policy is loaded; it is safe for concurrent use and cheap to
// copy. The zero Masker redacts with DefaultReplacement (failing closed).
//
// # Values that are not text
//
// Mask returns text. A protocol that must keep a value decodable as its
// column type (a PostgreSQL int8 in binary format, a JSON number) cannot
// use that text as is. What we recommend, per style:
//
//   - null: NULL (or JSON null) for every type.
//   - redact and partial: NULL for every non-text type. A redacted or
//     partially masked number is not a number, and a made-up one (0, or
//     the digits with some zeroed) would be taken for data.
//   - hash: for integer types, HashInt64 of the value's canonical text
//     form (e.g. strconv.AppendInt), narrowed to the column's width
//     (int16(h), int32(h)) so text and binary result formats agree and
//     joins on hashed keys still work; NULL for other non-text types.
//
// Numeric reports whether the style has such an integer form (only hash).
type Masker struct {
	style Style
	repl  string
	keep  int
	mac   *macPool // hash only
}

// macPool keeps HMAC states for one key; hmac.New costs two SHA-256
// key blocks and an allocation, Reset costs neither.
type macPool struct{ pool sync.Pool }

func newMacPool(key []byte) *macPool {
	k := append([]byte(nil), key...) // the caller may reuse its slice
	p := &macPool{}
	p.pool.New = func() any { return hmac.New(sha256.New, k) }
	return p
}

func (p *macPool) sum(v []byte, out *[sha256.Size]byte) {
	h := p.pool.Get().(hash.Hash)
	h.Reset()
	// hash.Hash writes never fail (hash.Hash docs).
	_, _ = h.Write(v)
	h.Sum(out[:0])
	p.pool.Put(h)
}

// NewMasker builds a masker of the given style ("redact", "partial",
// "hash", "null"). Errors wrap ErrUnknownStyle or ErrWeakKey.
func NewMasker(style string, opts Options) (Masker, error) {
	m := Masker{style: Style(style), repl: opts.Replacement, keep: opts.Keep}
	if m.repl == "" {
		m.repl = DefaultReplacement
	}
	switch {
	case m.keep == 0:
		m.keep = DefaultKeep
	case m.keep < 0:
		m.keep = 0
	}
	switch m.style {
	case StyleRedact, StylePartial, StyleNull:
	case StyleHash:
		if len(opts.Key) < MinHashKeyLen {
			return Masker{}, fmt.Errorf("mask.NewMasker: %w: %d bytes, want at least %d", ErrWeakKey, len(opts.Key), MinHashKeyLen)
		}
		m.mac = newMacPool(opts.Key)
	default:
		return Masker{}, fmt.Errorf("mask.NewMasker: %w %q (want redact, partial, hash or null)", ErrUnknownStyle, style)
	}
	return m, nil
}

// Style returns the masker's style; the zero Masker's is StyleRedact.
func (m Masker) Style() Style {
	if m.style == "" {
		return StyleRedact
	}
	return m.style
}

// Null reports whether the protocol should send a NULL (SQL NULL, JSON
// null) in place of the value instead of calling Mask.
func (m Masker) Null() bool { return m.style == StyleNull }

// Numeric reports whether the style has an integer form, HashInt64, that a
// protocol can send where the column type must stay an integer. For the
// other styles a protocol sends NULL for non-text types (see Masker).
func (m Masker) Numeric() bool { return m.style == StyleHash && m.mac != nil }

// Mask returns the masked form of a whole value. For the null style it
// returns "" (the protocol should send NULL instead; see Null).
func (m Masker) Mask(s string) string {
	switch m.style {
	case StyleNull:
		return ""
	case StylePartial:
		return partial(s, m.keep)
	case StyleHash:
		if m.mac != nil {
			return m.hashText(s)
		}
	}
	return m.replacement()
}

func (m Masker) replacement() string {
	if m.repl == "" {
		return DefaultReplacement // zero Masker
	}
	return m.repl
}

// MaskSpans masks only the given spans of s, each as Mask would mask a
// whole value, and leaves the rest of s as it is. The null style writes its
// Replacement (DefaultReplacement) for each span: there is no null inside a
// text, and an empty string would hide that anything was there. Spans out
// of order, overlapping or out of range are normalised first (never
// skipped): a span that reaches past the text is cut at its end.
func (m Masker) MaskSpans(s string, spans []Span) string {
	spans = normalizeSpans(spans, len(s))
	if len(spans) == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	last := 0
	for _, sp := range spans {
		b.WriteString(s[last:sp.Start])
		if m.style == StyleNull {
			b.WriteString(m.replacement())
		} else {
			b.WriteString(m.Mask(s[sp.Start:sp.End]))
		}
		last = sp.End
	}
	b.WriteString(s[last:])
	return b.String()
}

// HashInt64 returns a stable integer stand-in for v under the hash style's
// key: the first 8 bytes of HMAC-SHA256(key, v), big-endian, the same bits
// Mask shows in hex. Pass the value's canonical text form so text and
// binary result formats hash alike. For other styles it returns 0; check
// Numeric first.
func (m Masker) HashInt64(v []byte) int64 {
	if !m.Numeric() {
		return 0
	}
	var sum [sha256.Size]byte
	m.mac.sum(v, &sum)
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

func (m Masker) hashText(s string) string {
	var sum [sha256.Size]byte
	m.mac.sum(unsafeBytes(s), &sum)
	var out [len(hashPrefix) + hashHexLen]byte
	copy(out[:], hashPrefix)
	hex.Encode(out[len(hashPrefix):], sum[:hashHexLen/2])
	return string(out[:])
}

// partial keeps the last keep runes of s (at most half of them) and
// replaces every other letter or digit with '*'. Invalid UTF-8 bytes count
// as characters to hide.
func partial(s string, keep int) string {
	n := utf8.RuneCountInString(s)
	keep = min(keep, n/2)
	hide := n - keep
	var b strings.Builder
	b.Grow(len(s))
	i := 0
	for k := 0; k < hide; k++ {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1,
			unicode.IsLetter(r), unicode.IsNumber(r), unicode.IsMark(r):
			b.WriteByte('*')
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteString(s[i:])
	return b.String()
}

// String and GoString keep the key out of logs: fmt prints unexported
// fields otherwise.
func (m Masker) String() string { return "mask.Masker{" + string(m.Style()) + "}" }

// GoString implements fmt.GoStringer, see String.
func (m Masker) GoString() string { return m.String() }
