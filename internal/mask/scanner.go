package mask

import "slices"

// Hit is one sensitive value a Scanner found: its span and the name of the
// detector that recognised it.
type Hit struct {
	Span
	Detector string
}

// A Scanner runs a fixed set of detectors over texts. It is immutable and
// safe for concurrent use; build it once per policy, not per value.
type Scanner struct {
	ds []scanDetector
	// anyBuiltin: some detector wants the shared text statistics.
	anyBuiltin bool
}

type scanDetector struct {
	d Detector
	b builtin // d, if it is one of this package's detectors
}

// NewScanner returns a scanner over the given detectors; nil ones are
// skipped. When hits of different detectors overlap, the earlier detector
// in ds names the merged hit if the hits are equally long.
func NewScanner(ds ...Detector) *Scanner {
	s := &Scanner{}
	for _, d := range ds {
		if d == nil {
			continue
		}
		b, _ := d.(builtin)
		s.anyBuiltin = s.anyBuiltin || b != nil
		s.ds = append(s.ds, scanDetector{d: d, b: b})
	}
	return s
}

// Detectors returns the names of the scanner's detectors, in order.
func (s *Scanner) Detectors() []string {
	if s == nil {
		return nil
	}
	names := make([]string, len(s.ds))
	for i, d := range s.ds {
		names[i] = d.d.Name()
	}
	return names
}

// Scan returns the sensitive values in text, sorted by position and
// non-overlapping, or nil. Overlapping hits of different detectors are
// merged into one hit covering all of them, named after the longest: a
// byte any detector considers sensitive is never left out of the result.
// Spans a custom detector reports out of range are cut to the text.
func (s *Scanner) Scan(text string) []Hit {
	if s == nil || len(text) == 0 {
		return nil
	}
	var st textStats
	if s.anyBuiltin {
		st = statsOf(text)
	}
	// All detectors append to one span buffer; ends[k] is where detector
	// k's spans end in it. A clean text allocates nothing.
	var spans []Span
	var endsBuf [16]int
	ends := endsBuf[:0]
	for _, d := range s.ds {
		if d.b != nil {
			spans = d.b.find(spans, text, st)
		} else if found := d.d.Find(text); len(found) > 0 {
			base := len(spans)
			spans = append(spans, found...) // a copy: found is not ours
			spans = append(spans[:base], normalizeSpans(spans[base:], len(text))...)
		}
		ends = append(ends, len(spans))
	}
	if len(spans) == 0 {
		return nil
	}
	hits := make([]Hit, len(spans))
	sources, k := 0, 0
	for i, d := range s.ds {
		if ends[i] > k {
			sources++
		}
		for ; k < ends[i]; k++ {
			hits[k] = Hit{Span: spans[k], Detector: d.d.Name()}
		}
	}
	if sources == 1 {
		return hits // one detector's spans are already sorted and disjoint
	}
	return mergeHits(hits)
}

// mergeHits sorts hits and merges overlapping ones. The stable sort keeps
// detector order among hits with equal spans.
func mergeHits(hits []Hit) []Hit {
	slices.SortStableFunc(hits, func(a, b Hit) int {
		if a.Start != b.Start {
			return a.Start - b.Start
		}
		return b.End - a.End // longer first
	})
	out := hits[:0]
	longest := 0 // length of the hit that names out[len(out)-1]
	for _, h := range hits {
		if k := len(out) - 1; k >= 0 && h.Start < out[k].End {
			if h.Len() > longest {
				longest = h.Len()
				out[k].Detector = h.Detector
			}
			out[k].End = max(out[k].End, h.End)
			continue
		}
		out = append(out, h)
		longest = h.Len()
	}
	return out
}

// Redact masks every hit in text with m and returns the result and the
// number of hits (for the audit record, which counts masked values but
// never holds them). A text without hits is returned as is.
func (s *Scanner) Redact(text string, m Masker) (string, int) {
	hits := s.Scan(text)
	if len(hits) == 0 {
		return text, 0
	}
	spans := make([]Span, len(hits))
	for i, h := range hits {
		spans[i] = h.Span
	}
	return m.MaskSpans(text, spans), len(hits)
}
