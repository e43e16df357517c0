package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// exportChain returns the export lines of an n-record chain: records 1
// and 2 written under hash version 1, the rest under version 2, one with
// bytes that are not UTF-8 in a field and in a group.
func exportChain(t testing.TB, n int) []string {
	t.Helper()
	var lines []string
	prev := GenesisHash
	for i := 1; i <= n; i++ {
		ev, version := sampleResult(), 2
		if i <= 2 {
			ev, version = sampleEvent(), 1
		}
		ev.ID = int64(i)
		if i == 4 {
			ev.Request = "SELECT '\xff\xfe' <> 'x'\x00"
			ev.Groups = []string{"ok", "bad\xc3"}
		}
		h, err := HashWithVersion(version, prev, ev)
		if err != nil {
			t.Fatal(err)
		}
		b, err := NewExportLine(version, ev, prev, h).MarshalLine()
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
		prev = h
	}
	return lines
}

func TestExportLineFields(t *testing.T) {
	lines := exportChain(t, 4)
	if !strings.HasSuffix(lines[0], "}\n") || strings.Count(lines[0], "\n") != 1 {
		t.Fatalf("not one JSON line: %q", lines[0])
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[3]), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "time", "kind", "session_id", "request", "decision", "seq", "rows", "hash", "prev_hash", "hash_version", "raw"} {
		if _, ok := m[k]; !ok {
			t.Errorf("line has no %q: %s", k, lines[3])
		}
	}
	if !strings.Contains(lines[3], `<> 'x'`) {
		t.Errorf("HTML-escaped: %s", lines[3])
	}
	raw, _ := m["raw"].(map[string]any)
	if len(raw) != 2 || raw["request"] == nil || raw["groups.1"] == nil {
		t.Errorf("raw = %v, want request and groups.1", raw)
	}
	if strings.Contains(lines[2], `"raw"`) {
		t.Errorf("raw present for a valid UTF-8 record: %s", lines[2])
	}
}

func TestVerifyLines(t *testing.T) {
	const n = 6
	edit := func(i int, old, new string) func([]string) []string {
		return func(l []string) []string {
			if !strings.Contains(l[i], old) {
				t.Fatalf("line %d has no %q", i+1, old)
			}
			l[i] = strings.Replace(l[i], old, new, 1)
			return l
		}
	}
	tests := []struct {
		name        string
		mutate      func([]string) []string
		wantChecked int64
		wantBad     int64 // 0: verifies
	}{
		{"intact", func(l []string) []string { return l }, n, 0},
		{"empty", func([]string) []string { return nil }, 0, 0},
		{"blank lines and no final newline", func(l []string) []string {
			l[2] += "\n  \n"
			l[n-1] = strings.TrimSuffix(l[n-1], "\n")
			return l
		}, n, 0},
		{"starts mid-chain", func(l []string) []string { return l[2:] }, n - 2, 0},
		{"edited field", edit(2, `"subject":"agent-1"`, `"subject":"agent-2"`), 2, 3},
		{"edited result field", edit(4, `"rows":42`, `"rows":41`), 4, 5},
		{"version-1 record given a result field", edit(1, `"decision"`, `"rows":7,"decision"`), 1, 2},
		{"deleted line", func(l []string) []string { return append(l[:2:2], l[3:]...) }, 2, 3},
		{"swapped lines", func(l []string) []string { l[1], l[2] = l[2], l[1]; return l }, 1, 2},
		{"duplicate key", edit(2, `"subject":"agent-1"`, `"subject":"agent-1","subject":"agent-2"`), 2, 3},
		{"key in other case", edit(2, `"subject":"agent-1"`, `"Subject":"agent-1"`), 2, 3},
		{"unknown field", edit(2, `"subject"`, `"note":"x","subject"`), 2, 3},
		{"reformatted", edit(2, `,"subject"`, `, "subject"`), 2, 3},
		{"not JSON", edit(2, `{`, `[`), 2, 3},
		{"first line not JSON", func(l []string) []string { l[0] = "garbage\n"; return l }, 0, 1},
		{"bad hex", edit(3, `"prev_hash":"`, `"prev_hash":"zz`), 3, 4},
		{"raw bytes edited", func(l []string) []string {
			var x ExportLine
			if err := json.Unmarshal([]byte(l[3]), &x); err != nil {
				t.Fatal(err)
			}
			x.Raw["request"] = []byte("SELECT '\xff\xfe' <> 'y'\x00")
			x.Request = jsonLossy(x.Raw["request"])
			b, _ := x.MarshalLine()
			l[3] = string(b)
			return l
		}, 3, 4},
		{"shown text differs from raw bytes", edit(3, `<> 'x'`, `<> 'y'`), 3, 4},
		{"raw for a valid string", func(l []string) []string {
			var x ExportLine
			if err := json.Unmarshal([]byte(l[2]), &x); err != nil {
				t.Fatal(err)
			}
			x.Raw = map[string][]byte{"subject": []byte(x.Subject)}
			b, _ := x.MarshalLine()
			l[2] = string(b)
			return l
		}, 2, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := tt.mutate(exportChain(t, n))
			checked, bad, err := VerifyLines(strings.NewReader(strings.Join(lines, "")))
			if tt.wantBad == 0 {
				if err != nil || bad != 0 || checked != tt.wantChecked {
					t.Fatalf("VerifyLines = (%d, %d, %v), want (%d, 0, nil)", checked, bad, err, tt.wantChecked)
				}
				return
			}
			var ce *ChainError
			if !errors.As(err, &ce) || !errors.Is(err, ErrChainBroken) {
				t.Fatalf("err = %v, want *ChainError", err)
			}
			if bad != tt.wantBad || ce.ID != tt.wantBad || checked != tt.wantChecked {
				t.Fatalf("VerifyLines = (%d, %d, %v), want (%d, %d, …)", checked, bad, err, tt.wantChecked, tt.wantBad)
			}
		})
	}
}

func TestVerifyLinesBounded(t *testing.T) {
	long := `{"id":1,"request":"` + strings.Repeat("x", MaxExportLine) + `"}`
	checked, bad, err := VerifyLines(strings.NewReader(long))
	if err == nil || bad != 0 || checked != 0 || errors.Is(err, ErrChainBroken) {
		t.Fatalf("VerifyLines(overlong) = (%d, %d, %v), want a plain error", checked, bad, err)
	}
}

// FuzzVerifyLines: whatever the input, VerifyLines must not panic, must
// not count more records than there are lines, and must name a bad record
// exactly when it reports a broken chain.
func FuzzVerifyLines(f *testing.F) {
	lines := exportChain(f, 5)
	f.Add([]byte(strings.Join(lines, "")))
	f.Add([]byte(lines[3]))
	f.Add([]byte(lines[0] + lines[2]))
	f.Add([]byte("{}\n"))
	f.Add([]byte(`{"id":1,"raw":{"request":"/w=="}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checked, bad, err := VerifyLines(bytes.NewReader(data))
		if checked > int64(bytes.Count(data, []byte("\n"))+1) {
			t.Fatalf("checked %d records in %d lines", checked, bytes.Count(data, []byte("\n"))+1)
		}
		if errors.Is(err, ErrChainBroken) != (bad != 0) {
			t.Fatalf("bad = %d with err %v", bad, err)
		}
	})
}
