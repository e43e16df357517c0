package mask

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestScanDirty(t *testing.T) {
	sc := allBuiltins()
	hits := sc.Scan(dirtyText)
	got := hitStrings(dirtyText, hits)
	want := []string{
		"email:jane.roe@example.com",
		"credit_card:4111 1111 1111 1111",
		"us_ssn:123-45-6789",
		"phone:(415) 555-2671",
		"iban:DE89 3704 0044 0532 0130 00",
		"ip:203.0.113.7",
		"jwt:" + jwtIO,
		"api_key:AKIAIOSFODNN7EXAMPLE",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Scan = %q\nwant  %q", got, want)
	}
	checkHits(t, dirtyText, hits)

	red := mustMasker(t, "redact", Options{})
	out, n := sc.Redact(dirtyText, red)
	if n != len(want) {
		t.Errorf("Redact count = %d, want %d", n, len(want))
	}
	if strings.Count(out, DefaultReplacement) != len(want) {
		t.Errorf("Redact = %q", out)
	}
	// Nothing detectable is left in the masked text.
	if again := sc.Scan(out); len(again) != 0 {
		t.Errorf("masked text still has hits: %q", hitStrings(out, again))
	}
}

// TestFreeText is issue 5's "detectors catch values in unconfigured
// columns": a card number in a note, in several languages and layouts.
func TestFreeText(t *testing.T) {
	sc := allBuiltins()
	par := mustMasker(t, "partial", Options{})
	for _, tt := range []struct{ in, want string }{
		{"card 4111 1111 1111 1111 exp 12/27", "card **** **** **** 1111 exp 12/27"},
		{"Kunde zahlte mit 5555-5555-5555-4444, Rückruf unter 030 12345678.",
			"Kunde zahlte mit ****-****-****-4444, Rückruf unter *** ****5678."},
		{"顧客のカード番号は4111111111111111です。", "顧客のカード番号は************1111です。"},
		{`{"note":"SSN 078-05-1120; email j.doe@corp.example"}`,
			`{"note":"SSN ***-**-1120; email *.***@****.***mple"}`},
		{"nothing to see here, order 123456789 on 2024-01-02", "nothing to see here, order 123456789 on 2024-01-02"},
	} {
		got, _ := sc.Redact(tt.in, par)
		if got != tt.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

// spanDetector reports fixed spans, to test how a Scanner treats what
// custom detectors return.
type spanDetector struct {
	name  string
	spans []Span
}

func (d spanDetector) Name() string       { return d.name }
func (d spanDetector) Find(string) []Span { return slices.Clone(d.spans) }

func TestScanMerge(t *testing.T) {
	card, _ := Builtin(DetectCreditCard)
	text := "paid card 4111 1111 1111 1111 ok"
	label, err := Regex("card_label", `card \d{4}`)
	if err != nil {
		t.Fatal(err)
	}
	// Overlapping hits merge into their union, named after the longest.
	for _, ds := range [][]Detector{{label, card}, {card, label}} {
		hits := NewScanner(ds...).Scan(text)
		if got := hitStrings(text, hits); !slices.Equal(got, []string{"credit_card:card 4111 1111 1111 1111"}) {
			t.Errorf("Scan with %v = %q", NewScanner(ds...).Detectors(), got)
		}
	}
	// Equal spans: the earlier detector names the hit.
	a := spanDetector{"a", []Span{{0, 4}}}
	b := spanDetector{"b", []Span{{0, 4}}}
	if h := NewScanner(a, b).Scan(text); len(h) != 1 || h[0].Detector != "a" {
		t.Errorf("tie: %v", h)
	}
	if h := NewScanner(b, a).Scan(text); len(h) != 1 || h[0].Detector != "b" {
		t.Errorf("tie: %v", h)
	}
	// A chain of overlaps is one hit; a shorter detector's tail is kept.
	c := spanDetector{"c", []Span{{3, 10}}}
	d := spanDetector{"d", []Span{{8, 12}, {20, 22}}}
	got := NewScanner(a, c, d).Scan(text)
	want := []Hit{{Span{0, 12}, "c"}, {Span{20, 22}, "d"}}
	if !slices.Equal(got, want) {
		t.Errorf("chain: %v, want %v", got, want)
	}
	// Adjacent hits stay separate.
	e := spanDetector{"e", []Span{{4, 6}}}
	if got := NewScanner(a, e).Scan(text); len(got) != 2 {
		t.Errorf("adjacent: %v", got)
	}
	// Bad spans from a custom detector are cut to the text, sorted and
	// merged, never dropped while they cover part of it.
	bad := spanDetector{"bad", []Span{{30, 99}, {-3, 2}, {5, 5}, {1, 4}}}
	got = NewScanner(bad).Scan(text)
	want = []Hit{{Span{0, 4}, "bad"}, {Span{30, len(text)}, "bad"}}
	if !slices.Equal(got, want) {
		t.Errorf("bad spans: %v, want %v", got, want)
	}
}

func TestScannerEdges(t *testing.T) {
	var nilScanner *Scanner
	if nilScanner.Scan("4111111111111111") != nil || nilScanner.Detectors() != nil {
		t.Error("nil Scanner found something")
	}
	empty := NewScanner(nil, nil)
	if empty.Scan("4111111111111111") != nil {
		t.Error("Scanner without detectors found something")
	}
	if out, n := empty.Redact("x", Masker{}); out != "x" || n != 0 {
		t.Errorf("Redact = %q, %d", out, n)
	}
	if allBuiltins().Scan("") != nil {
		t.Error("hits in empty text")
	}
	if got := allBuiltins().Detectors(); !slices.Equal(got, BuiltinNames()) {
		t.Errorf("Detectors() = %v", got)
	}
}

func TestScannerConcurrent(t *testing.T) {
	sc := allBuiltins()
	want := fmt.Sprint(sc.Scan(dirtyText))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if got := fmt.Sprint(sc.Scan(dirtyText)); got != want {
					t.Errorf("concurrent Scan = %s", got)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestLinearTime feeds each detector inputs built to make a naive matcher
// backtrack or rescan, and checks that 4x the input costs well under 16x
// the time (quadratic), with an absolute bound for a 1 MiB value.
func TestLinearTime(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	gens := map[string]func(n int) string{
		"digits":      func(n int) string { return strings.Repeat("1", n) },
		"digit-space": func(n int) string { return strings.Repeat("1 ", n/2) },
		"digit-dash":  func(n int) string { return strings.Repeat("41-", n/3) },
		"parens":      func(n int) string { return strings.Repeat("(1", n/2) },
		"plus":        func(n int) string { return strings.Repeat("+1 ", n/3) },
		"dots":        func(n int) string { return strings.Repeat("1.", n/2) },
		"colons":      func(n int) string { return strings.Repeat("a:", n/2) },
		"at":          func(n int) string { return strings.Repeat("a@", n/2) },
		"at-domain":   func(n int) string { return strings.Repeat("a.", n/4) + "@" + strings.Repeat("b.", n/4) },
		"local":       func(n int) string { return strings.Repeat("é", n/4) + "@" },
		"iban":        func(n int) string { return strings.Repeat("GB82 ", n/5) },
		"jwt":         func(n int) string { return strings.Repeat("eyJ.", n/4) },
		"jwt-long":    func(n int) string { return "eyJ" + strings.Repeat("a", n) + ".b.c" },
		"keys":        func(n int) string { return strings.Repeat("ghp_", n/4) },
		"secret":      func(n int) string { return strings.Repeat("secret_access_key=", n/18) },
		"pem":         func(n int) string { return strings.Repeat("-----BEGIN PRIVATE KEY-----", n/27) },
		"ssn-label":   func(n int) string { return strings.Repeat("SSN 123456789 ", n/14) },
		"mixed":       func(n int) string { return strings.Repeat(dirtyText, n/len(dirtyText)) },
	}
	sc := allBuiltins()
	timeScan := func(s string) time.Duration {
		best := time.Duration(1 << 62)
		for range 3 {
			start := time.Now()
			sc.Scan(s)
			best = min(best, time.Since(start))
		}
		return best
	}
	for name, gen := range gens {
		small, large := gen(256<<10), gen(1<<20)
		ts, tl := timeScan(small), timeScan(large)
		t.Logf("%-12s 256 KiB %8v  1 MiB %8v", name, ts, tl)
		if tl > 2*time.Second {
			t.Errorf("%s: 1 MiB took %v", name, tl)
		}
		if ts > time.Millisecond && tl > 16*ts {
			t.Errorf("%s: 4x input took %.1fx time (256 KiB %v, 1 MiB %v): not linear", name, float64(tl)/float64(ts), ts, tl)
		}
	}
}

// checkHits asserts the Scan contract.
func checkHits(t testing.TB, s string, hits []Hit) {
	t.Helper()
	spans := make([]Span, len(hits))
	for i, h := range hits {
		spans[i] = h.Span
		if h.Detector == "" {
			t.Fatalf("hit %v has no detector name", h)
		}
	}
	checkSpans(t, s, spans)
}
