package mask

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func mustMasker(t testing.TB, style string, opts Options) Masker {
	t.Helper()
	m, err := NewMasker(style, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMaskStyles(t *testing.T) {
	tests := []struct {
		style string
		opts  Options
		in    string
		want  string
	}{
		{"redact", Options{}, "123-45-6789", "[REDACTED]"},
		{"redact", Options{}, "", "[REDACTED]"},
		{"redact", Options{Replacement: "***"}, "john@example.com", "***"},
		{"partial", Options{}, "4111 1111 1111 1111", "**** **** **** 1111"},
		{"partial", Options{}, "4111-1111-1111-1111", "****-****-****-1111"},
		{"partial", Options{}, "123-45-6789", "***-**-6789"},
		{"partial", Options{}, "john.doe@example.com", "****.***@*******.com"},
		{"partial", Options{}, "+44 20 7946 0958", "+** ** **** 0958"},
		{"partial", Options{Keep: 2}, "AKIAIOSFODNN7EXAMPLE", "******************LE"},
		{"partial", Options{Keep: -1}, "secret-42", "******-**"},
		// Never more than half in clear.
		{"partial", Options{}, "12345", "***45"},
		{"partial", Options{}, "1234", "**34"},
		{"partial", Options{}, "ab", "*b"},
		{"partial", Options{}, "a", "*"},
		{"partial", Options{}, "", ""},
		// Runes, not bytes; letters of any script are hidden.
		{"partial", Options{}, "José Müller-Łukasz", "**** ******-**kasz"},
		{"partial", Options{}, "山田太郎さんの電話", "*****んの電話"},
		{"partial", Options{}, "\xff\xfe1234abcd", "******abcd"},
		{"null", Options{}, "anything", ""},
	}
	for _, tt := range tests {
		m := mustMasker(t, tt.style, tt.opts)
		if got := m.Mask(tt.in); got != tt.want {
			t.Errorf("%s%+v.Mask(%q) = %q, want %q", tt.style, tt.opts, tt.in, got, tt.want)
		}
	}
}

func TestHash(t *testing.T) {
	m := mustMasker(t, "hash", Options{Key: testKey})
	a, b := m.Mask("john@example.com"), m.Mask("john@example.com")
	if a != b {
		t.Fatalf("hash not stable: %q vs %q", a, b)
	}
	if !regexp.MustCompile(`^h:[0-9a-f]{16}$`).MatchString(a) {
		t.Fatalf("hash %q has the wrong form", a)
	}
	if m.Mask("john@example.org") == a {
		t.Error("different values hash alike")
	}
	other := mustMasker(t, "hash", Options{Key: []byte("another key, 16+ bytes long")})
	if other.Mask("john@example.com") == a {
		t.Error("different keys hash alike")
	}

	// The key is copied: changing the caller's slice changes nothing.
	key := append([]byte(nil), testKey...)
	m2 := mustMasker(t, "hash", Options{Key: key})
	key[0] ^= 0xff
	if m2.Mask("john@example.com") != a {
		t.Error("masker follows changes to the caller's key slice")
	}

	// HashInt64 is the same 64 bits Mask shows.
	if !m.Numeric() {
		t.Fatal("hash masker not Numeric")
	}
	v := m.HashInt64([]byte("42"))
	var be [8]byte
	binary.BigEndian.PutUint64(be[:], uint64(v))
	if want := "h:" + hex.EncodeToString(be[:]); m.Mask("42") != want {
		t.Errorf("Mask(42) = %q, HashInt64 gives %q", m.Mask("42"), want)
	}
	if m.HashInt64([]byte("42")) != v || m.HashInt64([]byte("43")) == v {
		t.Error("HashInt64 not stable or not distinct")
	}

	// Concurrent use shares the HMAC pool safely (run with -race).
	done := make(chan string, 8)
	for range 8 {
		go func() {
			var last string
			for range 200 {
				last = m.Mask("john@example.com")
			}
			done <- last
		}()
	}
	for range 8 {
		if got := <-done; got != a {
			t.Errorf("concurrent Mask = %q, want %q", got, a)
		}
	}
}

func TestNewMaskerErrors(t *testing.T) {
	for _, tt := range []struct {
		style string
		opts  Options
		want  error
	}{
		{"hash", Options{}, ErrWeakKey},
		{"hash", Options{Key: []byte("short")}, ErrWeakKey},
		{"hash", Options{Key: testKey[:MinHashKeyLen-1]}, ErrWeakKey},
		{"scramble", Options{}, ErrUnknownStyle},
		{"", Options{}, ErrUnknownStyle},
		{"REDACT", Options{}, ErrUnknownStyle},
	} {
		_, err := NewMasker(tt.style, tt.opts)
		if !errors.Is(err, tt.want) {
			t.Errorf("NewMasker(%q) error = %v, want %v", tt.style, err, tt.want)
		}
	}
	if _, err := NewMasker("hash", Options{Key: testKey[:MinHashKeyLen]}); err != nil {
		t.Errorf("16-byte key refused: %v", err)
	}
}

func TestMaskerProperties(t *testing.T) {
	red := mustMasker(t, "redact", Options{})
	par := mustMasker(t, "partial", Options{})
	hsh := mustMasker(t, "hash", Options{Key: testKey})
	nul := mustMasker(t, "null", Options{})
	var zero Masker

	for _, tt := range []struct {
		m             Masker
		style         Style
		null, numeric bool
	}{
		{red, StyleRedact, false, false},
		{par, StylePartial, false, false},
		{hsh, StyleHash, false, true},
		{nul, StyleNull, true, false},
		{zero, StyleRedact, false, false},
	} {
		if tt.m.Style() != tt.style || tt.m.Null() != tt.null || tt.m.Numeric() != tt.numeric {
			t.Errorf("%v: Style %q Null %v Numeric %v", tt.m, tt.m.Style(), tt.m.Null(), tt.m.Numeric())
		}
		if !tt.numeric && tt.m.HashInt64([]byte("1")) != 0 {
			t.Errorf("%v: HashInt64 non-zero for a non-hash style", tt.m)
		}
	}
	// The zero Masker fails closed.
	if got := zero.Mask("4111111111111111"); got != DefaultReplacement {
		t.Errorf("zero Masker Mask = %q", got)
	}
	// The key never reaches a log line.
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(f, hsh); strings.Contains(s, string(testKey[:8])) || strings.Contains(s, "48 49 50") {
			t.Errorf("Sprintf(%q, masker) = %q shows the key", f, s)
		}
	}
}

func TestMaskSpans(t *testing.T) {
	text := "card 4111 1111 1111 1111 exp 12/27, mail jane@example.com"
	spans := []Span{{5, 24}, {41, 57}}
	for _, tt := range []struct {
		m    Masker
		want string
	}{
		{mustMasker(t, "redact", Options{}), "card [REDACTED] exp 12/27, mail [REDACTED]"},
		{mustMasker(t, "partial", Options{}), "card **** **** **** 1111 exp 12/27, mail ****@*******.com"},
		{mustMasker(t, "null", Options{}), "card [REDACTED] exp 12/27, mail [REDACTED]"},
		{mustMasker(t, "null", Options{Replacement: "<null>"}), "card <null> exp 12/27, mail <null>"},
	} {
		if got := tt.m.MaskSpans(text, spans); got != tt.want {
			t.Errorf("%v.MaskSpans = %q, want %q", tt.m, got, tt.want)
		}
	}
	h := mustMasker(t, "hash", Options{Key: testKey})
	got := h.MaskSpans(text, spans)
	if want := "card " + h.Mask("4111 1111 1111 1111") + " exp 12/27, mail " + h.Mask("jane@example.com"); got != want {
		t.Errorf("hash MaskSpans = %q, want %q", got, want)
	}

	red := mustMasker(t, "redact", Options{Replacement: "#"})
	for _, tt := range []struct {
		spans []Span
		want  string
	}{
		{nil, "abcdefghij"},
		{[]Span{{0, 10}}, "#"},
		{[]Span{{2, 4}, {2, 4}}, "ab#efghij"},            // duplicates
		{[]Span{{6, 8}, {1, 3}}, "a#def#ij"},             // unsorted
		{[]Span{{1, 5}, {3, 7}}, "a#hij"},                // overlapping: union
		{[]Span{{-5, 2}, {8, 99}}, "#cdefgh#"},           // out of range: cut, not dropped
		{[]Span{{4, 4}, {7, 3}, {20, 30}}, "abcdefghij"}, // empty and inverted
		{[]Span{{1, 2}, {2, 3}}, "a##defghij"},           // adjacent stay apart
	} {
		if got := red.MaskSpans("abcdefghij", tt.spans); got != tt.want {
			t.Errorf("MaskSpans(%v) = %q, want %q", tt.spans, got, tt.want)
		}
	}
	// The caller's slice is not reordered.
	in := []Span{{6, 8}, {1, 3}}
	red.MaskSpans("abcdefghij", in)
	if in[0] != (Span{6, 8}) {
		t.Errorf("MaskSpans modified its argument: %v", in)
	}
}

func TestPartialNeverShowsMoreThanHalf(t *testing.T) {
	m := mustMasker(t, "partial", Options{Keep: 100})
	for _, s := range []string{"a", "ab", "abc", "secret", "4111111111111111", "日本語テキスト"} {
		got := m.Mask(s)
		if utf8.RuneCountInString(got) != utf8.RuneCountInString(s) {
			t.Errorf("Mask(%q) = %q changes the rune count", s, got)
		}
		if stars := strings.Count(got, "*"); stars < (utf8.RuneCountInString(s)+1)/2 {
			t.Errorf("Mask(%q) = %q hides fewer than half", s, got)
		}
	}
}
