package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/audit"
)

// exportIDs exports q, checks that the export re-verifies offline, and
// returns the exported ids.
func exportIDs(t testing.TB, s *SQLite, q Query) []int64 {
	t.Helper()
	var buf bytes.Buffer
	n, err := s.Export(context.Background(), &buf, q)
	if err != nil {
		t.Fatalf("Export(%+v): %v", q, err)
	}
	checked, bad, err := audit.VerifyLines(bytes.NewReader(buf.Bytes()))
	if err != nil || bad != 0 || checked != n {
		t.Fatalf("VerifyLines of %d exported = (%d, %d, %v)", n, checked, bad, err)
	}
	ids := []int64{}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, audit.MaxExportLine)
	for sc.Scan() {
		var l audit.ExportLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, l.ID)
	}
	if int64(len(ids)) != n {
		t.Fatalf("Export returned %d, wrote %d lines", n, len(ids))
	}
	return ids
}

func span(lo, hi int64) []int64 {
	out := []int64{}
	for id := lo; id <= hi; id++ {
		out = append(out, id)
	}
	return out
}

func TestExportRanges(t *testing.T) {
	s := openTest(t, Options{})
	// Times almost in id order, as with concurrent sessions: record 5 is
	// older than record 4.
	recordAt(t, s, 0, 1, 2, 5, 3, 4, 6, 7, 8, 9)
	at := func(sec int) time.Time { return pruneBase.Add(time.Duration(sec) * time.Second) }
	tests := []struct {
		name string
		q    Query
		want []int64
	}{
		{"all", Query{}, span(1, 10)},
		// Contiguous from the first record at or after Since, including
		// record 5, whose own time is earlier (a Query would skip it).
		{"since", Query{Since: at(4)}, span(4, 10)},
		{"until", Query{Until: at(5)}, span(1, 6)},
		{"since and until", Query{Since: at(3), Until: at(7)}, span(4, 7)},
		{"after id", Query{AfterID: 7}, span(8, 10)},
		{"before id", Query{BeforeID: 3}, span(1, 2)},
		{"since and after id", Query{Since: at(1), AfterID: 5}, span(6, 10)},
		{"limit", Query{Since: at(2), Limit: 2}, span(3, 4)},
		{"since after everything", Query{Since: at(60)}, []int64{}},
		{"until before everything", Query{Until: at(0)}, []int64{}},
		{"empty range", Query{AfterID: 5, BeforeID: 6}, []int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exportIDs(t, s, tt.q); !slices.Equal(got, tt.want) {
				t.Fatalf("exported %v, want %v", got, tt.want)
			}
		})
	}
}

func TestExportRefusesFilters(t *testing.T) {
	s := openTest(t, Options{})
	recordAt(t, s, 0, 1)
	for _, q := range []Query{
		{Subject: "agent-1"}, {Target: "x"}, {Decision: audit.Deny}, {Kind: audit.KindStatement},
		{Kinds: []string{audit.KindStatement}}, {SessionID: "sess-1"}, {Text: "SELECT"}, {Newest: true},
	} {
		var buf bytes.Buffer
		if n, err := s.Export(context.Background(), &buf, q); !errors.Is(err, errExportFilter) || n != 0 || buf.Len() != 0 {
			t.Errorf("Export(%+v) = (%d, %v), %d bytes; want errExportFilter", q, n, err, buf.Len())
		}
	}
}

// TestExportRoundTrip: every field survives the export, including bytes
// that are not UTF-8, and records written under hash version 1.
func TestExportRoundTrip(t *testing.T) {
	checkGoroutines(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "warden.db")
	writeV1Database(t, path, 2)
	s := openAt(t, path, Options{})
	odd := testEvent(3)
	odd.Request = "SELECT '\xff\xfe' <> '</script>'"
	odd.Groups = []string{"bad\xc3", "good"}
	odd.Seq, odd.Fingerprint, odd.ParamsHash, odd.DurationUS, odd.Rows, odd.Bytes = 3, "SELECT $1", "beef", 77, 1, 12
	for _, ev := range []*audit.Event{odd, testEvent(4)} {
		if err := s.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := s.Export(ctx, &buf, Query{}); err != nil {
		t.Fatal(err)
	}
	if checked, bad, err := audit.VerifyLines(bytes.NewReader(buf.Bytes())); err != nil || bad != 0 || checked != 4 {
		t.Fatalf("VerifyLines = (%d, %d, %v)", checked, bad, err)
	}
	mustVerify(t, s, 4)
	stored, err := s.Query(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	for i, line := range lines {
		var l audit.ExportLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		if want := []int{1, 1, audit.HashVersion, audit.HashVersion}[i]; l.HashVersion != want {
			t.Errorf("record %d: hash_version %d, want %d", l.ID, l.HashVersion, want)
		}
		if l.ID == 3 { // the odd one: its exact bytes are in raw
			if string(l.Raw["request"]) != odd.Request || len(l.Raw) != 1 {
				t.Fatalf("raw = %q", l.Raw)
			}
			l.Request = odd.Request
			// Groups are stored as JSON, so as encoding/json writes them,
			// and that is what is hashed.
			if want := []string{"bad�", "good"}; !slices.Equal(stored[i].Groups, want) || !slices.Equal(l.Groups, want) {
				t.Fatalf("groups stored %q, exported %q, want %q", stored[i].Groups, l.Groups, want)
			}
		}
		if !equalEvents(&l.Event, &stored[i]) {
			t.Errorf("line %d:\n got %+v\nwant %+v", i+1, l.Event, stored[i])
		}
	}
}

func equalEvents(a, b *audit.Event) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y) && a.Time.Equal(b.Time)
}

// TestExportUnbounded: an export is not capped at MaxQueryLimit.
func TestExportUnbounded(t *testing.T) {
	s := openTest(t, Options{})
	const workers, each = 25, 100 // 2500 > MaxQueryLimit
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if err := s.Record(context.Background(), testEvent(w*each+i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := exportIDs(t, s, Query{}); !slices.Equal(got, span(1, workers*each)) {
		t.Fatalf("exported %d records, want %d", len(got), workers*each)
	}
}

// TestExportAfterPrune: an export of a pruned log starts at the anchor
// and still verifies; its first prev_hash is the anchor's.
func TestExportAfterPrune(t *testing.T) {
	s := openTest(t, Options{})
	recordAt(t, s, seconds(10)...)
	if _, err := s.Prune(context.Background(), pruneBase.Add(4*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := exportIDs(t, s, Query{}); !slices.Equal(got, span(5, 11)) {
		t.Fatalf("exported %v", got)
	}
	var buf bytes.Buffer
	if _, err := s.Export(context.Background(), &buf, Query{Limit: 1}); err != nil {
		t.Fatal(err)
	}
	var first audit.ExportLine
	if err := json.Unmarshal(buf.Bytes(), &first); err != nil {
		t.Fatal(err)
	}
	a := storedAnchor(t, s)
	if first.ID != a.firstID || first.PrevHash != hex.EncodeToString(a.prev) {
		t.Fatalf("first line %d/%s, anchor %+v", first.ID, first.PrevHash, a)
	}
}

// TestExportShowsTampering: an export carries what is stored, so an edit
// made in the database is found offline.
func TestExportShowsTampering(t *testing.T) {
	s := openTest(t, Options{})
	recordAt(t, s, seconds(8)...)
	if _, err := indexedDB(t, s).Exec(`UPDATE audit_events SET decision = 'allow', request = 'SELECT 1' WHERE id = 5`); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if n, err := s.Export(context.Background(), &buf, Query{}); err != nil || n != 8 {
		t.Fatalf("Export = (%d, %v)", n, err)
	}
	checked, bad, err := audit.VerifyLines(&buf)
	if bad != 5 || checked != 4 || !errors.Is(err, audit.ErrChainBroken) {
		t.Fatalf("VerifyLines = (%d, %d, %v), want (4, 5, chain error)", checked, bad, err)
	}
	// A row edited into something undecodable stops the export.
	if _, err := indexedDB(t, s).Exec(`UPDATE audit_events SET groups = 'x' WHERE id = 3`); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Export(context.Background(), &bytes.Buffer{}, Query{}); !errors.Is(err, audit.ErrChainBroken) || n != 2 {
		t.Fatalf("Export of an undecodable row = (%d, %v)", n, err)
	}
}

type failingWriter struct{ after int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errors.New("disk full")
	}
	w.after--
	return len(p), nil
}

func TestExportWriteError(t *testing.T) {
	s := openTest(t, Options{})
	recordAt(t, s, seconds(3)...)
	if _, err := s.Export(context.Background(), &failingWriter{}, Query{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Export to a failing writer = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Export(ctx, &bytes.Buffer{}, Query{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Export(cancelled) = %v", err)
	}
}
