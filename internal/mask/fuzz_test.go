package mask

import (
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// allStats passes every prefilter.
var allStats = textStats{
	digits: 1 << 30, dots: 1 << 30, colons: 1 << 30, dashes: 1 << 30, ats: 1 << 30,
	plus: 1 << 30, chain: 1 << 30, dotDigits: 1 << 30, ibanHeads: 1 << 30, jwtHeads: 1 << 30,
}

// FuzzScan checks the Detector and Scanner contracts on any text: no
// panic, spans in range, sorted and disjoint; every detector span is
// covered by a Scan hit; and no prefilter rejects a text its matcher would
// have found something in.
func FuzzScan(f *testing.F) {
	for _, cases := range detectorTables {
		for _, c := range cases {
			f.Add(c.in)
		}
	}
	f.Add(cleanText)
	f.Add(dirtyText)

	custom, err := Regex("employee", `(?i)emp[-_ ]?id[=: ]+(?P<mask>\w+)`)
	if err != nil {
		f.Fatal(err)
	}
	ds := []Detector{custom}
	for _, n := range BuiltinNames() {
		d, _ := Builtin(n)
		ds = append(ds, d)
	}
	sc := NewScanner(ds...)
	red := mustMasker(f, "redact", Options{})

	f.Fuzz(func(t *testing.T, s string) {
		hits := sc.Scan(s)
		checkHits(t, s, hits)
		for _, d := range ds {
			spans := d.Find(s)
			checkSpans(t, s, spans)
			if b, ok := d.(builtin); ok {
				unfiltered := b.find(nil, s, allStats)
				if !slices.Equal(spans, unfiltered) {
					t.Fatalf("%s: prefilter changed the result on %q: %v, without %v", d.Name(), s, spans, unfiltered)
				}
			}
			for _, sp := range spans {
				if !covered(hits, sp) {
					t.Fatalf("%s span %v of %q not covered by Scan hits %v", d.Name(), sp, s, hits)
				}
			}
		}
		out, n := sc.Redact(s, red)
		if n != len(hits) {
			t.Fatalf("Redact counted %d hits, Scan %d", n, len(hits))
		}
		if n == 0 && out != s {
			t.Fatalf("Redact changed a text without hits: %q -> %q", s, out)
		}
	})
}

func covered(hits []Hit, sp Span) bool {
	for _, h := range hits {
		if h.Start <= sp.Start && sp.End <= h.End {
			return true
		}
	}
	return false
}

var fuzzStyles = []string{"redact", "partial", "hash", "null"}

// FuzzMask checks every style on any value and MaskSpans on any spans:
// no panic, partial keeps the rune count and hides at least half, hash has
// its fixed form, and text outside the spans is left as it was.
func FuzzMask(f *testing.F) {
	f.Add(uint8(0), int8(0), "123-45-6789", []byte{0, 3})
	f.Add(uint8(1), int8(4), "4111 1111 1111 1111", []byte{5, 24})
	f.Add(uint8(1), int8(-1), "José Müller", []byte{})
	f.Add(uint8(2), int8(0), "john@example.com", []byte{0, 4, 2, 9})
	f.Add(uint8(3), int8(0), "", []byte{0xff, 0x80})
	f.Add(uint8(1), int8(100), "\xff\xfe日本", []byte{1, 2})

	f.Fuzz(func(t *testing.T, style uint8, keep int8, s string, spanData []byte) {
		st := fuzzStyles[int(style)%len(fuzzStyles)]
		m, err := NewMasker(st, Options{Keep: int(keep), Key: testKey})
		if err != nil {
			t.Fatal(err)
		}
		got := m.Mask(s)
		switch st {
		case "partial":
			n := utf8.RuneCountInString(s)
			if utf8.RuneCountInString(got) != n {
				t.Fatalf("partial(%q) = %q changes the rune count", s, got)
			}
			if utf8.ValidString(s) && !utf8.ValidString(got) {
				t.Fatalf("partial(%q) = %q is not UTF-8", s, got)
			}
			// The last k runes are kept; before them no letter, digit or
			// mark survives.
			k := int(keep)
			switch {
			case k == 0:
				k = DefaultKeep
			case k < 0:
				k = 0
			}
			k = min(k, n/2)
			gr, sr := []rune(got), []rune(s)
			if string(gr[n-k:]) != string(sr[n-k:]) {
				t.Fatalf("partial(%q) = %q does not keep the last %d runes", s, got, k)
			}
			for _, r := range gr[:n-k] {
				if unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r) {
					t.Fatalf("partial(%q) = %q leaves %q in the hidden part", s, got, r)
				}
			}
		case "hash":
			if len(got) != 18 || !strings.HasPrefix(got, "h:") || got != m.Mask(s) {
				t.Fatalf("hash(%q) = %q", s, got)
			}
		case "null":
			if got != "" || !m.Null() {
				t.Fatalf("null(%q) = %q", s, got)
			}
		case "redact":
			if got != DefaultReplacement {
				t.Fatalf("redact(%q) = %q", s, got)
			}
		}

		// Spans from the fuzzer's bytes, signed and possibly out of range.
		var spans []Span
		for i := 0; i+1 < len(spanData); i += 2 {
			spans = append(spans, Span{int(int8(spanData[i])), int(int8(spanData[i+1]))})
		}
		out := m.MaskSpans(s, spans)
		norm := normalizeSpans(spans, len(s))
		if len(norm) == 0 {
			if out != s {
				t.Fatalf("MaskSpans without effective spans changed %q to %q", s, out)
			}
			return
		}
		first, last := norm[0], norm[len(norm)-1]
		if !strings.HasPrefix(out, s[:first.Start]) || !strings.HasSuffix(out, s[last.End:]) {
			t.Fatalf("MaskSpans(%q, %v) = %q changed text outside the spans", s, spans, out)
		}
		checkSpans(t, s, norm)
	})
}
