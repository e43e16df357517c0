package mask

import (
	"strings"
	"testing"
)

// cleanText is a typical 200-byte free-text value with numbers, dots,
// dashes and colons but nothing to mask: the cost every unmasked value
// pays when a column is configured for detection.
const cleanText = "Customer reported that the nightly export failed twice on 2024-03-12 " +
	"at 02:15 after the v3.2 upgrade; retry succeeded. 42 rows affected, no data " +
	"loss. Follow-up with the platform team, ticket OPS-1182."

// dirtyText holds one value for most detectors.
var dirtyText = "Refund for jane.roe@example.com, card 4111 1111 1111 1111 exp 12/27, " +
	"SSN 123-45-6789, call (415) 555-2671, IBAN DE89 3704 0044 0532 0130 00, " +
	"from 203.0.113.7 with token " + jwtIO + " and key AKIAIOSFODNN7EXAMPLE."

func TestBenchTexts(t *testing.T) {
	if len(cleanText) < 190 || len(cleanText) > 210 {
		t.Errorf("cleanText is %d bytes, want about 200", len(cleanText))
	}
	sc := allBuiltins()
	if hits := sc.Scan(cleanText); len(hits) != 0 {
		t.Errorf("cleanText has hits: %q", hitStrings(cleanText, hits))
	}
	hits := sc.Scan(dirtyText)
	got := map[string]int{}
	for _, h := range hits {
		got[h.Detector]++
	}
	for _, n := range []string{"email", "credit_card", "us_ssn", "phone", "iban", "ip", "jwt", "api_key"} {
		if got[n] != 1 {
			t.Errorf("dirtyText: %s hits %d, want 1 (%q)", n, got[n], hitStrings(dirtyText, hits))
		}
	}
}

func BenchmarkScanClean(b *testing.B) {
	sc := allBuiltins()
	b.SetBytes(int64(len(cleanText)))
	b.ReportAllocs()
	for b.Loop() {
		if len(sc.Scan(cleanText)) != 0 {
			b.Fatal("hit in clean text")
		}
	}
}

func BenchmarkScanDirty(b *testing.B) {
	sc := allBuiltins()
	b.SetBytes(int64(len(dirtyText)))
	b.ReportAllocs()
	for b.Loop() {
		if len(sc.Scan(dirtyText)) == 0 {
			b.Fatal("no hit in dirty text")
		}
	}
}

func BenchmarkRedactDirty(b *testing.B) {
	sc := allBuiltins()
	m, _ := NewMasker("redact", Options{})
	b.SetBytes(int64(len(dirtyText)))
	b.ReportAllocs()
	for b.Loop() {
		sc.Redact(dirtyText, m)
	}
}

// BenchmarkScanLarge is a 64 KiB mixed document (a JSON API response).
func BenchmarkScanLarge(b *testing.B) {
	var sb strings.Builder
	for sb.Len() < 64<<10 {
		sb.WriteString(cleanText)
		sb.WriteString(dirtyText)
	}
	text := sb.String()
	sc := allBuiltins()
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		sc.Scan(text)
	}
}

func BenchmarkDetectorClean(b *testing.B) {
	for _, n := range BuiltinNames() {
		d, _ := Builtin(n)
		b.Run(n, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d.Find(cleanText)
			}
		})
	}
}

func BenchmarkMask(b *testing.B) {
	key := []byte("0123456789abcdef0123456789abcdef")
	for _, style := range []string{"redact", "partial", "hash", "null"} {
		m, err := NewMasker(style, Options{Key: key})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(style, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m.Mask("jane.roe@example.com")
			}
		})
	}
}

// TestCleanAllocs: a value with nothing to mask costs no allocation, even
// when it holds near misses that reach the matchers (a bare nine-digit
// order number, a dotted version, a JWT-like dotted name, a PEM
// certificate).
func TestCleanAllocs(t *testing.T) {
	sc := allBuiltins()
	for _, s := range []string{
		cleanText,
		"Order 123456789 shipped to 10.0.19041.1 on 2024-01-02 10:11:12",
		"eyes.on.you eyJub3Rqc29u.eyJ.sig 550e8400-e29b-41d4-a716-446655440000",
		"GB83 WEST 1234 5698 7654 32 4111111111111112 000-12-3456 lodash@4.17.21",
		certPEM,
	} {
		if n := testing.AllocsPerRun(100, func() { sc.Scan(s) }); n != 0 {
			t.Errorf("Scan(%q) allocates %v times", s, n)
		}
	}
}
