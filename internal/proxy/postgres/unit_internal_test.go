package postgres

import (
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/sqlfacts"
)

// quoteIdent's output goes into the upstream search_path, which
// PostgreSQL splits as a list of identifiers (SplitIdentifierString):
// unquoted names are folded to lower case, quoted ones are taken as is
// with "" standing for ".
func TestQuoteIdent(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"public", "public"},
		{"app_2", "app_2"},
		{"_x", "_x"},
		{"", `""`},
		{"Public", `"Public"`}, // would fold to public unquoted
		{"1abc", `"1abc"`},     // may not start with a digit
		{"a-b", `"a-b"`},
		{"a b", `"a b"`},
		{"a,b", `"a,b"`}, // would split the list
		{"a.b", `"a.b"`},
		{`we"ird`, `"we""ird"`},
		{`"`, `""""`},
		{"public, pg_catalog", `"public, pg_catalog"`},
		{"ümlaut", `"ümlaut"`},
		{"a$b", `"a$b"`},
	} {
		if got := quoteIdent(tc.in); got != tc.want {
			t.Errorf("quoteIdent(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// Every spelling PostgreSQL accepts for a client-only encoding (whose
// multibyte characters can contain the byte of \ or ') must be recognised
// and dropped from the startup parameters. PostgreSQL matches encoding
// names after clean_encoding_name (src/common/encnames.c): lower case,
// and every character that is not a letter or digit removed. So "S.JIS"
// and "s jis" are SJIS to the server.
func TestUnsafeClientEncodings(t *testing.T) {
	unsafe := []string{
		// The names and aliases in encnames.c's pg_encname_tbl.
		"SJIS", "sjis", "Shift_JIS", "shiftjis", "MSKANJI", "win932", "windows932",
		"SHIFT_JIS_2004", "shift-jis-2004", "shiftjis2004",
		"BIG5", "big-5", "win950", "windows950",
		"GBK", "win936", "windows936", "cp936",
		"GB18030", "gb-18030",
		"JOHAB",
		" sjis ", "\tSJIS\n",
		// Separators other than '-' and '_' are ignored by PostgreSQL too.
		"s.jis", "S.J.I.S", "s jis", "sjis.", "(sjis)", "big5!", "gb 18030", "shift jis 2004", "win/932",
	}
	for _, v := range unsafe {
		if safeClientEncodings[normEncoding(v)] {
			t.Errorf("client_encoding %q (PostgreSQL reads it as %q) would be forwarded: normEncoding gives %q",
				v, pgCleanEncodingName(v), normEncoding(v))
		}
		if normEncoding(v) != pgCleanEncodingName(v) {
			t.Errorf("normEncoding(%q) = %q, PostgreSQL reads %q", v, normEncoding(v), pgCleanEncodingName(v))
		}
	}
	// Only UTF-8 is forwarded; every other requested encoding is dropped
	// and the session stays UTF8.
	for _, v := range []string{"UTF8", "utf-8", "UNICODE", "Utf_8"} {
		if !safeClientEncodings[normEncoding(v)] {
			t.Errorf("client_encoding %q is dropped but is UTF-8", v)
		}
	}
}

// pgCleanEncodingName is clean_encoding_name from PostgreSQL's
// src/common/encnames.c, for messages.
func pgCleanEncodingName(v string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(v) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestNormEncoding(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"UTF8", "utf8"},
		{"utf-8", "utf8"},
		{" Shift_JIS ", "shiftjis"},
		{"SHIFT_JIS_2004", "shiftjis2004"},
		{"shift-jis-2004", "shiftjis2004"},
		{"s.jis", "sjis"},
		{"Big-5", "big5"},
		{"", ""},
	} {
		if got := normEncoding(tc.in); got != tc.want {
			t.Errorf("normEncoding(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCString(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"SELECT 1\x00", "SELECT 1", true},
		{"\x00", "", true},
		{"", "", false},
		{"SELECT 1", "", false},
		{"SELECT 1\x00x", "", false},
		// The whole body, embedded NULs included: PostgreSQL reads the
		// query to the first NUL and then refuses the message as
		// malformed (pq_getmsgend in exec_simple_query's caller), so
		// the statement after the NUL never runs.
		{"SELECT 1\x00DELETE FROM t\x00", "SELECT 1\x00DELETE FROM t", true},
	} {
		got, ok := cstring([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("cstring(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestFirstCString(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"portal\x00\x00\x00\x00\x00", "portal", true}, // Execute: portal, max rows
		{"\x00\x00\x00\x00\x00", "", true},
		{"a\x00b\x00", "a", true},
		{"", "", false},
		{"no terminator", "", false},
	} {
		got, ok := firstCString([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("firstCString(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestTwoCStrings(t *testing.T) {
	for _, tc := range []struct {
		in         string
		portal, st string
		ok         bool
	}{
		{"p1\x00s1\x00\x00\x00", "p1", "s1", true}, // Bind: portal, statement, ...
		{"\x00\x00", "", "", true},
		{"\x00s\x00rest", "", "s", true},
		{"p\x00\x00", "p", "", true},
		{"p\x00s", "", "", false},
		{"p\x00", "", "", false},
		{"p", "", "", false},
		{"", "", "", false},
	} {
		p, s, ok := twoCStrings([]byte(tc.in))
		if ok != tc.ok || ok && (p != tc.portal || s != tc.st) {
			t.Errorf("twoCStrings(%q) = %q, %q, %v; want %q, %q, %v", tc.in, p, s, ok, tc.portal, tc.st, tc.ok)
		}
	}
}

func TestReadOnly(t *testing.T) {
	sel := sqlfacts.Access{Action: sqlfacts.Select, Object: "public.orders"}
	ins := sqlfacts.Access{Action: sqlfacts.Insert, Object: "public.orders"}
	lock := sqlfacts.Access{Action: sqlfacts.Lock, Object: "public.orders"}
	exec := sqlfacts.Access{Action: sqlfacts.Execute, Object: "public.f"}
	prepared := map[string]*sqlfacts.Statement{
		"reader":  {Kind: "select", Accesses: []sqlfacts.Access{sel}},
		"writer":  {Kind: "insert", Accesses: []sqlfacts.Access{ins}},
		"refused": {Kind: "set", Refusal: "no"},
		// A prepared EXECUTE cannot exist in PostgreSQL; if warden's
		// map ever held one, it must not be trusted as read-only.
		"indirect": {Kind: "execute", ExecuteName: "reader"},
	}
	for _, tc := range []struct {
		name string
		st   *sqlfacts.Statement
		want bool
	}{
		{"nil", nil, false},
		{"no accesses (SELECT 1, BEGIN)", &sqlfacts.Statement{Kind: "select"}, true},
		{"select", &sqlfacts.Statement{Kind: "select", Accesses: []sqlfacts.Access{sel, sel}}, true},
		{"select and insert", &sqlfacts.Statement{Kind: "insert", Accesses: []sqlfacts.Access{sel, ins}}, false},
		{"select for update", &sqlfacts.Statement{Kind: "select", Accesses: []sqlfacts.Access{sel, lock}}, false},
		{"function call", &sqlfacts.Statement{Kind: "select", Accesses: []sqlfacts.Access{exec}}, false},
		{"refused", &sqlfacts.Statement{Kind: "set", Refusal: "SET ROLE"}, false},
		{"EXECUTE of a reader", &sqlfacts.Statement{Kind: "execute", ExecuteName: "reader"}, true},
		{"EXECUTE of a reader, with a function in its parameters",
			&sqlfacts.Statement{Kind: "execute", ExecuteName: "reader", Accesses: []sqlfacts.Access{exec}}, false},
		{"EXECUTE of a writer", &sqlfacts.Statement{Kind: "execute", ExecuteName: "writer"}, false},
		{"EXECUTE of a refused statement", &sqlfacts.Statement{Kind: "execute", ExecuteName: "refused"}, false},
		{"EXECUTE of an unknown name", &sqlfacts.Statement{Kind: "execute", ExecuteName: "nope"}, false},
		{"EXECUTE of an EXECUTE", &sqlfacts.Statement{Kind: "execute", ExecuteName: "indirect"}, false},
	} {
		if got := readOnly(tc.st, prepared); got != tc.want {
			t.Errorf("%s: readOnly = %v, want %v", tc.name, got, tc.want)
		}
	}
	// Without the session's prepared statements an EXECUTE is never
	// known to be read-only.
	if readOnly(&sqlfacts.Statement{Kind: "execute", ExecuteName: "reader"}, nil) {
		t.Error("readOnly(EXECUTE reader, nil) = true, want false")
	}
}
