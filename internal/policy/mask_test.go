package policy

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/mask"
)

const maskConfig = `listen: { postgres: 127.0.0.1:6432 }
identity: { oidc: [{ issuer: https://idp.example.com, audience: warden }] }
targets:
  - { name: prod-db, type: postgres, address: "127.0.0.1:5432", database: app, user: warden }
  - { name: reports, type: postgres, address: "127.0.0.1:5433", database: rep, user: warden, schema: analytics }
masking:
  hash_key: 0123456789abcdef-test
  detectors:
    - { name: employee_id, regex: 'EMP-[0-9]{6}' }
policies:
  - name: analysts
    when: '"analysts" in groups'
    allow:
      - target: prod-db
        sql: { select: ["public.*"] }
    mask:
      - target: prod-db
        columns: [public.customers.email, "*.ssn", "public.*.card_number", 'public."Orders"."Total"', crm.customers.email]
        detectors: [email, credit_card]
        style: partial
        keep: 2
      - target: prod-db
        columns: [customers.phone, "public.people.name_*", 'public.t.a\*b', "public.t.x?", public.accounts.iban]
        style: hash
        allow_predicates: true
  - name: support
    when: '"support" in groups'
    allow:
      - target: prod-db
        sql: { select: ["public.*"] }
    mask:
      - target: prod-db
        columns: [public.customers.email]
        detectors: [employee_id, email]
        replacement: "<email>"
      - target: prod-db
        columns: ["public.*.ssn", "*.iban"]
        style: null
        allow_predicates: true
  - name: ops
    when: sub.startsWith("ops-")
    allow:
      - target: prod-db
  - name: reporters
    when: '"analysts" in groups'
    mask:
      - target: reports
        columns: ["*.*.secret"]
        style: partial
        keep: 0
  - name: narrow
    when: sub == "narrow"
    allow:
      - target: prod-db
    mask:
      - target: prod-db
        columns: [public.customers.email, "public.pay_*.card"]
`

var (
	maskAnalyst = principal("agent-1", []string{"analysts"}, nil)
	maskSupport = principal("agent-2", []string{"support"}, nil)
	maskBoth    = principal("agent-3", []string{"analysts", "support"}, nil)
	maskOps     = principal("ops-1", nil, nil)
	maskNarrow  = principal("narrow", nil, nil)
)

func TestMaskColumn(t *testing.T) {
	e := compileTest(t, maskConfig)
	type want struct {
		masked bool
		style  mask.Style
		rule   string
		pred   bool // AllowPredicates
	}
	no := want{}
	partial0 := want{true, mask.StylePartial, "analysts/mask[0]", false}
	hash1 := want{true, mask.StyleHash, "analysts/mask[1]", true}
	cases := []struct {
		name                  string
		who                   *identity.Principal
		schema, table, column string
		want                  want
	}{
		// One policy: 3-part and 2-part globs, wildcards, quoting, case.
		{"exact 3-part", maskAnalyst, "public", "customers", "email", partial0},
		{"exact 3-part, other schema", maskAnalyst, "crm", "customers", "email", partial0},
		{"3-part names its schema only", maskAnalyst, "sales", "customers", "email", no},
		{"other column of a masked table", maskAnalyst, "public", "customers", "name", no},
		{"*.ssn: any table", maskAnalyst, "public", "customers", "ssn", partial0},
		{"*.ssn: any schema", maskAnalyst, "hr", "people", "ssn", partial0},
		{"*.ssn is not a prefix", maskAnalyst, "public", "customers", "ssn2", no},
		{"case: SSN is another column", maskAnalyst, "public", "customers", "SSN", no},
		{"public.*.card_number", maskAnalyst, "public", "orders", "card_number", partial0},
		{"public.*.card_number stays in public", maskAnalyst, "other", "orders", "card_number", no},
		{"quoted names keep case", maskAnalyst, "public", "Orders", "Total", partial0},
		{"quoted names match exactly", maskAnalyst, "public", "orders", "total", no},
		{"2-part: any schema", maskAnalyst, "sales", "customers", "phone", hash1},
		{"2-part: public too", maskAnalyst, "public", "customers", "phone", hash1},
		{"2-part: the table is literal", maskAnalyst, "sales", "customers2", "phone", no},
		{"name wildcard", maskAnalyst, "public", "people", "name_first", hash1},
		{"name wildcard needs its prefix", maskAnalyst, "public", "people", "name", no},
		{"escaped star is literal", maskAnalyst, "public", "t", "a*b", hash1},
		{"escaped star matches only a star", maskAnalyst, "public", "t", "axb", no},
		{"? is one character", maskAnalyst, "public", "t", "xy", hash1},
		{"? is exactly one", maskAnalyst, "public", "t", "xyz", no},
		{"? is not zero", maskAnalyst, "public", "t", "x", no},
		{"empty names", maskAnalyst, "", "", "", no},

		// Union across policies: the stronger style wins.
		{"redact beats partial", maskBoth, "public", "customers", "email", want{true, mask.StyleRedact, "support/mask[0]", false}},
		{"null beats partial, predicates only if both allow", maskBoth, "public", "customers", "ssn", want{true, mask.StyleNull, "support/mask[1]", false}},
		{"the weaker rule still applies where alone", maskBoth, "hr", "people", "ssn", partial0},
		{"a glob's null beats an exact entry's hash", maskBoth, "public", "accounts", "iban", want{true, mask.StyleNull, "support/mask[1]", true}},
		{"rules of one policy alone", maskSupport, "public", "customers", "ssn", want{true, mask.StyleNull, "support/mask[1]", true}},
		{"union keeps every policy's columns", maskBoth, "sales", "customers", "phone", hash1},
		{"exact entry alone", maskAnalyst, "public", "accounts", "iban", hash1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ms := e.Bind(c.who).Masks("prod-db")
			if ms == nil {
				t.Fatal("Masks = nil")
			}
			cm, ok := ms.Column(c.schema, c.table, c.column)
			got := want{ok, cm.Style, cm.Rule, cm.AllowPredicates}
			if got != c.want {
				t.Errorf("Column(%q, %q, %q) = %+v, want %+v", c.schema, c.table, c.column, got, c.want)
			}
			if ok && cm.Policy != strings.Split(cm.Rule, "/")[0] {
				t.Errorf("Policy = %q for rule %q", cm.Policy, cm.Rule)
			}
		})
	}
}

func TestMaskColumnOptions(t *testing.T) {
	e := compileTest(t, maskConfig)
	key, _ := e.MaskConfig()
	cases := []struct {
		who                   *identity.Principal
		target                string
		schema, table, column string
		keep                  int
		repl                  string
		in, out               string
	}{
		{maskAnalyst, "prod-db", "public", "customers", "email", 2, "", "ann@example.com", "***@*******.*om"},
		{maskBoth, "prod-db", "public", "customers", "email", 0, "<email>", "ann@example.com", "<email>"},
		// keep: 0 keeps nothing; mask.Options would read 0 as its default.
		{maskAnalyst, "reports", "analytics", "t", "secret", -1, "", "abcdefgh", "********"},
		{maskBoth, "prod-db", "public", "customers", "ssn", 0, config.DefaultMaskReplacement, "123-45-6789", ""},
	}
	for _, c := range cases {
		cm, ok := e.Bind(c.who).Masks(c.target).Column(c.schema, c.table, c.column)
		if !ok {
			t.Fatalf("%s.%s.%s not masked", c.schema, c.table, c.column)
		}
		if cm.Keep != c.keep || cm.Replacement != c.repl {
			t.Errorf("%s: keep %d replacement %q, want %d %q", cm.Rule, cm.Keep, cm.Replacement, c.keep, c.repl)
		}
		m, err := mask.NewMasker(string(cm.Style), cm.Options(key))
		if err != nil {
			t.Fatalf("%s: NewMasker: %v", cm.Rule, err)
		}
		if got := m.Mask(c.in); got != c.out {
			t.Errorf("%s masks %q as %q, want %q", cm.Rule, c.in, got, c.out)
		}
	}
	// The hash style works with the configured key.
	cm, _ := e.Bind(maskAnalyst).Masks("prod-db").Column("sales", "customers", "phone")
	m, err := mask.NewMasker(string(cm.Style), cm.Options(key))
	if err != nil || !strings.HasPrefix(m.Mask("+1 555 0100"), "h:") {
		t.Errorf("hash masker: %v %q", err, m.Mask("+1 555 0100"))
	}
}

// Every pair of styles on one column, from two policies: the stronger
// wins whatever the order of the policies.
func TestMaskStrongestStyleWins(t *testing.T) {
	styles := []string{"null", "redact", "hash", "partial"} // strongest first
	for i, a := range styles {
		for j, b := range styles {
			cfg := fmt.Sprintf(`listen: { postgres: 127.0.0.1:6432 }
identity: { oidc: [{ issuer: https://idp.example.com, audience: warden }] }
targets: [{ name: db, type: postgres, address: "h:1", database: d, user: u }]
masking: { hash_key: 0123456789abcdef }
policies:
  - name: first
    mask: [{ target: db, columns: [public.t.c], style: %s }]
  - name: second
    mask: [{ target: db, columns: ["*.c"], style: %s }]
`, quoteStyle(a), quoteStyle(b))
			cm, ok := compileTest(t, cfg).Bind(agent).Masks("db").Column("public", "t", "c")
			wantStyle, wantRule := a, "first/mask[0]"
			if j < i {
				wantStyle, wantRule = b, "second/mask[0]"
			}
			if !ok || string(cm.Style) != wantStyle || cm.Rule != wantRule {
				t.Errorf("%s vs %s: got %s by %s, want %s by %s", a, b, cm.Style, cm.Rule, wantStyle, wantRule)
			}
		}
	}
	// Between two partial rules, the one keeping less wins; keep: 0 keeps least.
	for _, c := range []struct {
		keepA, keepB string
		rule         string
	}{{"4", "2", "second/mask[0]"}, {"2", "4", "first/mask[0]"}, {"0", "1", "first/mask[0]"}, {"3", "3", "first/mask[0]"}} {
		cfg := fmt.Sprintf(`listen: { postgres: 127.0.0.1:6432 }
identity: { oidc: [{ issuer: https://idp.example.com, audience: warden }] }
targets: [{ name: db, type: postgres, address: "h:1", database: d, user: u }]
policies:
  - name: first
    mask: [{ target: db, columns: [t.c], style: partial, keep: %s }]
  - name: second
    mask: [{ target: db, columns: [public.t.c], style: partial, keep: %s }]
`, c.keepA, c.keepB)
		cm, _ := compileTest(t, cfg).Bind(agent).Masks("db").Column("public", "t", "c")
		if cm.Rule != c.rule {
			t.Errorf("keep %s vs %s: won by %s, want %s", c.keepA, c.keepB, cm.Rule, c.rule)
		}
	}
}

func quoteStyle(s string) string {
	if s == "null" {
		return `"null"`
	}
	return s
}

func TestMaskTable(t *testing.T) {
	e := compileTest(t, maskConfig)
	narrow := e.Bind(maskNarrow).Masks("prod-db")
	analyst := e.Bind(maskAnalyst).Masks("prod-db")
	cases := []struct {
		ms            *MaskSet
		schema, table string
		want          bool
	}{
		{narrow, "public", "customers", true},
		{narrow, "public", "orders", false},
		{narrow, "other", "customers", false},
		{narrow, "public", "pay_2024", true},
		{narrow, "public", "pay", false},
		{analyst, "anything", "at_all", true}, // "*.ssn" could mask a column of any table
		{nil, "public", "customers", false},
	}
	for _, c := range cases {
		if got := c.ms.Table(c.schema, c.table); got != c.want {
			t.Errorf("%s: Table(%q, %q) = %v, want %v", c.ms.Target(), c.schema, c.table, got, c.want)
		}
	}
}

func TestMaskDetectors(t *testing.T) {
	e := compileTest(t, maskConfig)
	cases := []struct {
		who   *identity.Principal
		names []string
		style mask.Style
		rule  string
	}{
		{maskAnalyst, []string{"email", "credit_card"}, mask.StylePartial, "analysts/mask[0]"},
		{maskSupport, []string{"employee_id", "email"}, mask.StyleRedact, "support/mask[0]"},
		{maskBoth, []string{"email", "credit_card", "employee_id"}, mask.StyleRedact, "support/mask[0]"},
		{maskNarrow, nil, "", ""},
	}
	for _, c := range cases {
		ms := e.Bind(c.who).Masks("prod-db")
		if got := ms.Detectors(); !slices.Equal(got, c.names) {
			t.Errorf("%s: Detectors = %q, want %q", c.who.Subject, got, c.names)
		}
		if ds := ms.DetectorStyle(); ds.Style != c.style || ds.Rule != c.rule {
			t.Errorf("%s: DetectorStyle = %s by %q, want %s by %q", c.who.Subject, ds.Style, ds.Rule, c.style, c.rule)
		}
	}
	// Detectors returns a copy.
	ms := e.Bind(maskBoth).Masks("prod-db")
	ms.Detectors()[0] = "changed"
	if ms.Detectors()[0] != "email" {
		t.Error("Detectors exposes the set's slice")
	}
	if ms.Style() != mask.StyleNull {
		t.Errorf("Style = %s, want the strongest, null", ms.Style())
	}
	// Every name a set lists can be built, from MaskConfig for custom ones.
	_, custom := e.MaskConfig()
	for _, n := range ms.Detectors() {
		if _, ok := mask.Builtin(n); ok {
			continue
		}
		if _, err := mask.Regex(n, custom[n]); err != nil {
			t.Errorf("detector %q: %v", n, err)
		}
	}
}

// No rule for the subject and target: nil, the proxy's fast path. Mask
// rules grant nothing.
func TestMasksNil(t *testing.T) {
	e := compileTest(t, maskConfig)
	cases := []struct {
		name   string
		who    *identity.Principal
		target string
	}{
		{"policy without mask rules", maskOps, "prod-db"},
		{"mask rules for another target", maskSupport, "reports"},
		{"unknown target", maskAnalyst, "nope"},
		{"no principal", nil, "prod-db"},
	}
	for _, c := range cases {
		if ms := e.Bind(c.who).Masks(c.target); ms != nil {
			t.Errorf("%s: Masks = %+v, want nil", c.name, ms)
		}
	}
	if e.Bind(maskAnalyst).Masks("reports") == nil {
		t.Error("analyst has a mask rule on reports, but Masks is nil")
	}
	if d := e.Bind(maskAnalyst).CanConnect("reports"); d.Effect != Deny {
		t.Errorf("a mask rule let the subject connect: %+v", d)
	}
	// A configuration without any mask rule.
	if ms := compileTest(t, testConfig).Bind(analyst).Masks("prod-db"); ms != nil {
		t.Error("Masks non-nil without mask rules")
	}
	// A nil set answers like an empty one.
	var ms *MaskSet
	if _, ok := ms.Column("public", "t", "c"); ok || ms.Table("public", "t") || ms.Detectors() != nil ||
		ms.DetectorStyle() != (ColumnMask{}) || ms.Style() != "" || ms.Target() != "" {
		t.Error("nil MaskSet masks something")
	}
}

func TestMaskConfig(t *testing.T) {
	e := compileTest(t, maskConfig)
	key, custom := e.MaskConfig()
	if string(key) != "0123456789abcdef-test" || len(custom) != 1 || custom["employee_id"] != "EMP-[0-9]{6}" {
		t.Fatalf("MaskConfig = %q, %v", key, custom)
	}
	key[0], custom["x"] = 'X', "y"
	if key2, custom2 := e.MaskConfig(); key2[0] != '0' || len(custom2) != 1 {
		t.Error("MaskConfig returns the engine's own key or map")
	}
	if key, custom := compileTest(t, testConfig).MaskConfig(); key != nil || custom == nil || len(custom) != 0 {
		t.Errorf("MaskConfig without masking = %q, %v; want nil and an empty map", key, custom)
	}
}

func TestVersionMask(t *testing.T) {
	base := compileTest(t, maskConfig)
	changes := map[string][2]string{
		"column":           {"public.people.name_*", "public.people.name*"},
		"style":            {"    style: hash\n", "    style: redact\n"},
		"keep":             {"keep: 2", "keep: 3"},
		"replacement":      {`replacement: "<email>"`, `replacement: "<e>"`},
		"allow_predicates": {"        style: null\n        allow_predicates: true\n", "        style: null\n"},
		"detector list":    {"detectors: [email, credit_card]", "detectors: [email]"},
		"custom detector":  {"EMP-[0-9]{6}", "EMP-[0-9]{7}"},
		"mask rule added":  {"  - name: ops\n", "  - name: ops\n    mask: [{ target: prod-db, columns: [a.b] }]\n"},
	}
	for name, r := range changes {
		if !strings.Contains(maskConfig, r[0]) {
			t.Fatalf("%s: test config lacks %q", name, r[0])
		}
		if e := compileTest(t, strings.Replace(maskConfig, r[0], r[1], 1)); e.Version() == base.Version() {
			t.Errorf("version unchanged by a change of %s", name)
		}
	}
	// The key changes how hashes look, not what is masked; and a version
	// must not be a hash of a secret.
	if e := compileTest(t, strings.Replace(maskConfig, "0123456789abcdef-test", "another-key-0123456789", 1)); e.Version() != base.Version() {
		t.Error("version changed by the hash key")
	}
}

// A Config built in Go skips Parse's checks; Compile repeats them.
func TestCompileMaskErrors(t *testing.T) {
	keep := func(n int) *int { return &n }
	cases := []struct {
		name    string
		masking config.Masking
		rule    config.MaskRule
		want    string
	}{
		{"unknown style", config.Masking{}, config.MaskRule{Target: "db", Columns: []string{"t.c"}, Style: "blur"},
			`config: policies[0].mask[0].style: policy "p": unknown masking style "blur"`},
		{"negative keep", config.Masking{}, config.MaskRule{Target: "db", Columns: []string{"t.c"}, Style: "partial", Keep: keep(-1)},
			`config: policies[0].mask[0].keep: policy "p": must be 0 or more`},
		{"hash without key", config.Masking{}, config.MaskRule{Target: "db", Columns: []string{"t.c"}, Style: "hash"},
			`config: policies[0].mask[0].style: policy "p": style hash needs masking.hash_key of at least 16 bytes`},
		{"hash with a short key", config.Masking{HashKey: "short"}, config.MaskRule{Target: "db", Columns: []string{"t.c"}, Style: "hash"},
			`config: policies[0].mask[0].style: policy "p": style hash needs masking.hash_key of at least 16 bytes`},
		{"bad glob", config.Masking{}, config.MaskRule{Target: "db", Columns: []string{"c"}},
			`config: policies[0].mask[0].columns[0]: policy "p": invalid column glob "c": expected schema.table.column or table.column (quote names that contain dots)`},
		{"unknown detector", config.Masking{}, config.MaskRule{Target: "db", Detectors: []string{"emp"}},
			`config: policies[0].mask[0].detectors[0]: policy "p": unknown detector "emp"`},
		{"unknown target", config.Masking{}, config.MaskRule{Target: "nope", Columns: []string{"t.c"}},
			`config: policies[0].mask[0].target: policy "p": no target named "nope"`},
		{"nothing to mask", config.Masking{}, config.MaskRule{Target: "db"},
			`config: policies[0].mask[0]: policy "p": a mask rule must name columns, fields or detectors to mask`},
		{"empty-matching detector", config.Masking{Detectors: []config.CustomDetector{{Name: "emp", Regex: "x*"}}}, config.MaskRule{Target: "db", Detectors: []string{"emp"}},
			"config: masking.detectors[0].regex: detector \"emp\": can match the empty string\n" +
				`config: policies[0].mask[0].detectors[0]: policy "p": unknown detector "emp"`},
		{"detector named like a built-in", config.Masking{Detectors: []config.CustomDetector{{Name: "email", Regex: "x"}}}, config.MaskRule{Target: "db", Detectors: []string{"email"}},
			`config: masking.detectors[0].name: detector name "email" is already taken`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := &config.Config{
				Targets:  []config.Target{{Name: "db", Type: "postgres"}},
				Masking:  c.masking,
				Policies: []config.Policy{{Name: "p", Mask: []config.MaskRule{c.rule}}},
			}
			_, err := Compile(cfg)
			if err == nil {
				t.Fatal("no error")
			}
			if got := strings.TrimPrefix(err.Error(), "policy.Compile: "); got != c.want {
				t.Errorf("error:\n got %s\nwant %s", got, c.want)
			}
			if strings.Contains(err.Error(), "short") && c.masking.HashKey == "short" {
				t.Error("error leaks the hash key")
			}
		})
	}
	// Defaults apply to a Go-built config too.
	cfg := &config.Config{
		Targets:  []config.Target{{Name: "db", Type: "postgres"}},
		Policies: []config.Policy{{Name: "p", Mask: []config.MaskRule{{Target: "db", Columns: []string{"t.c"}}, {Target: "db", Columns: []string{"t.d"}, Style: "partial"}}}},
	}
	e, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ms := e.Bind(agent).Masks("db")
	if cm, _ := ms.Column("s", "t", "c"); cm.Style != mask.StyleRedact || cm.Replacement != mask.DefaultReplacement {
		t.Errorf("default style: %+v", cm)
	}
	if cm, _ := ms.Column("s", "t", "d"); cm.Keep != mask.DefaultKeep {
		t.Errorf("default keep: %+v", cm)
	}
}

// Looking masks up runs for every result column: it must not allocate.
func TestMaskAllocs(t *testing.T) {
	e := compileTest(t, maskConfig)
	s := e.Bind(maskBoth)
	allocs := testing.AllocsPerRun(100, func() {
		ms := s.Masks("prod-db")
		if _, ok := ms.Column("public", "customers", "email"); !ok { // exact
			t.Fatal("email not masked")
		}
		if _, ok := ms.Column("hr", "people", "ssn"); !ok { // by column name
			t.Fatal("ssn not masked")
		}
		if _, ok := ms.Column("public", "people", "name_last"); !ok { // wild column
			t.Fatal("name_last not masked")
		}
		if _, ok := ms.Column("public", "orders", "id"); ok {
			t.Fatal("id masked")
		}
		if !ms.Table("public", "customers") || s.Masks("nope") != nil {
			t.Fatal("Table")
		}
	})
	if allocs != 0 {
		t.Errorf("mask lookups allocate %v times", allocs)
	}
	// Mask rules leave the allow path as it was.
	st := stmt("select", "select public.customers", "select public.orders")
	allocs = testing.AllocsPerRun(100, func() {
		if d := s.DecideStatement("prod-db", st); d.Effect != Allow {
			t.Fatal(d.Reason)
		}
	})
	if allocs != 0 {
		t.Errorf("allow path with mask rules allocates %v times", allocs)
	}
}

// Sets are shared between sessions of the same policies, and built while
// others read them; run under -race.
func TestConcurrentMasks(t *testing.T) {
	e := compileTest(t, maskConfig)
	whos := []*identity.Principal{maskAnalyst, maskSupport, maskBoth, maskOps, maskNarrow}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				ms := e.Bind(whos[(i+j)%len(whos)]).Masks("prod-db")
				ms.Column("public", "customers", "email")
				ms.Column("x", "y", "ssn")
				ms.Table("public", "orders")
				ms.Detectors()
			}
		})
	}
	wg.Wait()
	if a, b := e.Bind(maskBoth).Masks("prod-db"), e.Bind(principal("agent-7", []string{"analysts", "support"}, nil)).Masks("prod-db"); a != b {
		t.Error("identical policy sets did not share their MaskSet")
	}
}

func BenchmarkMaskColumn(b *testing.B) {
	e := compileTest(b, maskConfig)
	ms := e.Bind(maskBoth).Masks("prod-db")
	for _, c := range []struct{ name, schema, table, column string }{
		{"exact", "public", "customers", "email"},
		{"by-column", "hr", "people", "ssn"},
		{"unmasked", "public", "orders", "id"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ms.Column(c.schema, c.table, c.column)
			}
		})
	}
}
