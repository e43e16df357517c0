package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/mask"
)

// Masking (issue 5). Mask rules follow identity like every other rule: a
// Subject gets the mask rules of all its matching policies for a target,
// merged once per combination of matching policies (with the rule
// tables, see Engine.tablesFor) into a MaskSet. Which columns a result
// holds is the proxy's business; this file only answers "is
// schema.table.column masked for this subject, and how".

// ColumnMask says how values are masked and which rule says so. It is
// comparable, so a proxy can key the maskers it builds by it.
type ColumnMask struct {
	// Rule identifies the mask rule: "analysts/mask[0]".
	Rule string
	// Policy is the rule's policy.
	Policy string
	// Style is redact, partial, hash or null.
	Style mask.Style
	// Keep is, for partial, how many trailing characters stay in clear,
	// in mask.Options.Keep's terms so that it can be passed on as is:
	// positive keeps that many, negative keeps none (the rule's
	// "keep: 0"); never 0, which mask would read as its default. 0 for
	// the other styles.
	Keep int
	// Replacement is what redact writes, and null writes inside free
	// text; never empty for those two styles. "" for the others.
	Replacement string
	// AllowPredicates reports whether statements may use the column in
	// WHERE, JOIN, ORDER BY, GROUP BY and HAVING. When several rules mask
	// one column it holds only if all of them allow it: the weaker rule
	// that lost on style still gets its say on predicates (fail closed).
	AllowPredicates bool
}

// Options returns the mask.Options to build this mask's masker with
// (mask.NewMasker(string(c.Style), c.Options(hashKey))); hashKey is
// Engine.MaskConfig's.
func (c ColumnMask) Options(hashKey []byte) mask.Options {
	return mask.Options{Replacement: c.Replacement, Keep: c.Keep, Key: hashKey}
}

// styleRank orders styles by strength: when two rules mask one column,
// the stronger style wins. null reveals nothing, not even the length or
// the presence of a value's text; redact hides the value but not that
// there was one; hash keeps equality, so joins, counts and guesses
// against known values still work; partial shows part of the value.
func styleRank(s mask.Style) int {
	switch s {
	case mask.StyleNull:
		return 4
	case mask.StyleRedact:
		return 3
	case mask.StyleHash:
		return 2
	case mask.StylePartial:
		return 1
	}
	return 0
}

// maskRule is one compiled mask rule.
type maskRule struct {
	order       int        // position in the file, for ties
	cm          ColumnMask // as the rule alone says
	columns     []colGlob
	detectors   []string // distinct, in the rule's order
	fields      []segGlob
	passNonJSON bool // http: non_json: pass
}

// stronger reports whether a masks more than b: the stronger style, then,
// between two partial rules, the one keeping fewer characters, then the
// earlier rule (so that ties are named by the first rule in the file).
func (a *maskRule) stronger(b *maskRule) bool {
	if b == nil {
		return true
	}
	if ra, rb := styleRank(a.cm.Style), styleRank(b.cm.Style); ra != rb {
		return ra > rb
	}
	if a.cm.Style == mask.StylePartial {
		if ka, kb := max(a.cm.Keep, 0), max(b.cm.Keep, 0); ka != kb {
			return ka < kb
		}
	}
	return a.order < b.order
}

// colGlob is one compiled column glob with its rule.
type colGlob struct {
	schema, table, column pattern
	rule                  *maskRule
}

func (g *colGlob) literal() bool { return !g.schema.wild && !g.table.wild && !g.column.wild }

func (g *colGlob) matchTable(schema, table string) bool {
	return g.schema.match(schema) && g.table.match(table)
}

type colKey struct{ schema, table, column string }

type tableKey struct{ schema, table string }

// compileMaskRule compiles rule j of policy pol; p is its key path.
// Problems are reported through fail; the rule is nil if there were any.
func (e *Engine) compileMaskRule(pol string, j int, p string, r config.MaskRule, order int, fail func(path, msg string)) *maskRule {
	bad := false
	failf := func(path, format string, args ...any) {
		fail(path, fmt.Sprintf("policy %q: ", pol)+fmt.Sprintf(format, args...))
		bad = true
	}
	cm := ColumnMask{Rule: fmt.Sprintf("%s/mask[%d]", pol, j), Policy: pol, AllowPredicates: r.AllowPredicates}

	// A Config built in Go has skipped Parse's defaults and checks; the
	// defaults are applied and the checks repeated here, so that nothing
	// unchecked reaches a masker.
	style := string(r.Style)
	if style == "" {
		style = string(config.DefaultMaskStyle)
	}
	cm.Style = mask.Style(style)
	switch cm.Style {
	case mask.StylePartial:
		switch {
		case r.Keep == nil:
			cm.Keep = config.DefaultMaskKeep
		case *r.Keep < 0:
			failf(p+".keep", "must be 0 or more")
		case *r.Keep == 0:
			cm.Keep = -1 // mask.Options: negative keeps none, 0 means the default
		default:
			cm.Keep = *r.Keep
		}
	case mask.StyleRedact, mask.StyleNull:
		cm.Replacement = r.Replacement
		if cm.Replacement == "" {
			cm.Replacement = config.DefaultMaskReplacement
		}
	case mask.StyleHash:
		if len(e.maskKey) < mask.MinHashKeyLen {
			failf(p+".style", "style hash needs masking.hash_key of at least %d bytes", mask.MinHashKeyLen)
		}
	default:
		failf(p+".style", "unknown masking style %q", style)
	}
	// The masker is built once here only to be sure the proxy can build
	// it: a rule whose masker fails would otherwise fail every session.
	if !bad {
		if _, err := mask.NewMasker(style, cm.Options(e.maskKey)); err != nil {
			failf(p+".style", "%v", err)
		}
	}

	mr := &maskRule{order: order, cm: cm}
	if len(r.Columns) == 0 && len(r.Detectors) == 0 && len(r.Fields) == 0 {
		failf(p, "a mask rule must name columns, fields or detectors to mask")
	}
	for k, f := range r.Fields {
		if err := config.CheckFieldGlob(f); err != nil {
			failf(fmt.Sprintf("%s.fields[%d]", p, k), "invalid field path %q: %v", f, err)
			continue
		}
		mr.fields = append(mr.fields, compileSegGlob(strings.Split(f, ".")))
	}
	mr.passNonJSON = r.NonJSON == config.NonJSONPass
	for k, s := range r.Columns {
		g, err := config.ParseColumnGlob(s)
		if err != nil {
			failf(fmt.Sprintf("%s.columns[%d]", p, k), "invalid column glob %q: %v", s, err)
			continue
		}
		schema := g.Schema
		if !g.Qualified() {
			schema = "*" // table.column: any schema
		}
		mr.columns = append(mr.columns, colGlob{
			schema: compilePattern(schema), table: compilePattern(g.Table), column: compilePattern(g.Column), rule: mr,
		})
	}
	for k, d := range r.Detectors {
		if _, ok := mask.Builtin(d); !ok {
			if _, ok := e.customDetectors[d]; !ok {
				failf(fmt.Sprintf("%s.detectors[%d]", p, k), "unknown detector %q", d)
				continue
			}
		}
		if !slices.Contains(mr.detectors, d) {
			mr.detectors = append(mr.detectors, d)
		}
	}
	if bad {
		return nil
	}
	return mr
}

// MaskSet is the masking a subject gets on one target: the union of the
// mask rules of all its matching policies. It is immutable and safe for
// concurrent use, shared by every session of the same combination of
// policies. A nil *MaskSet masks nothing; its methods may be called.
type MaskSet struct {
	target string
	// exact holds the answer for every column an entry names without
	// wildcards, with the globs that also match it already folded in, so
	// that the common lookup is one map access.
	exact map[colKey]ColumnMask
	// tables are the tables of exact entries, for Table.
	tables map[tableKey]struct{}
	// Entries with a wildcard somewhere: byColumn by their literal column
	// name ("*.ssn"), anyColumn those whose column part is wild too;
	// wild holds both, in config order, for Table.
	byColumn  map[string][]colGlob
	anyColumn []colGlob
	wild      []colGlob

	detectors    []string   // union, in order of first appearance
	detectorMask ColumnMask // strongest among rules with detectors
	style        mask.Style // strongest of all rules

	// http targets: JSON field rules, and whether every rule lets a
	// non-JSON body pass.
	fieldRules  []*maskRule
	passNonJSON bool
}

// newMaskSet compiles the union of rules (in config order) for target.
func newMaskSet(target string, rules []*maskRule) *MaskSet {
	m := &MaskSet{target: target, passNonJSON: true}
	var all []colGlob
	var strongest, detecting *maskRule
	for _, r := range rules {
		all = append(all, r.columns...)
		if len(r.fields) > 0 {
			m.fieldRules = append(m.fieldRules, r)
		}
		m.passNonJSON = m.passNonJSON && r.passNonJSON
		if r.stronger(strongest) {
			strongest = r
		}
		if len(r.detectors) > 0 && r.stronger(detecting) {
			detecting = r
		}
		for _, d := range r.detectors {
			if !slices.Contains(m.detectors, d) {
				m.detectors = append(m.detectors, d)
			}
		}
	}
	if strongest != nil {
		m.style = strongest.cm.Style
	}
	if detecting != nil {
		m.detectorMask = detecting.cm
	}
	for _, g := range all {
		if g.literal() {
			k := colKey{g.schema.lit, g.table.lit, g.column.lit}
			if m.exact == nil {
				m.exact = map[colKey]ColumnMask{}
				m.tables = map[tableKey]struct{}{}
			}
			if _, done := m.exact[k]; !done {
				m.exact[k], _ = resolve(all, k)
			}
			m.tables[tableKey{k.schema, k.table}] = struct{}{}
			continue
		}
		m.wild = append(m.wild, g)
		if g.column.wild {
			m.anyColumn = append(m.anyColumn, g)
			continue
		}
		if m.byColumn == nil {
			m.byColumn = map[string][]colGlob{}
		}
		m.byColumn[g.column.lit] = append(m.byColumn[g.column.lit], g)
	}
	return m
}

// resolve combines the entries of globs that match k: the strongest
// rule's mask, allowing predicates only if every matching rule does.
func resolve(globs []colGlob, k colKey) (ColumnMask, bool) {
	var best *maskRule
	allow := true
	for i := range globs {
		g := &globs[i]
		if g.matchTable(k.schema, k.table) && g.column.match(k.column) {
			if g.rule.stronger(best) {
				best = g.rule
			}
			allow = allow && g.rule.cm.AllowPredicates
		}
	}
	if best == nil {
		return ColumnMask{}, false
	}
	cm := best.cm
	cm.AllowPredicates = allow
	return cm, true
}

// Column reports whether the column schema.table.column is masked, and
// how: by the strongest of the rules whose columns match it (null >
// redact > hash > partial). Names are compared as PostgreSQL stores them
// (pg_namespace.nspname, pg_class.relname, pg_attribute.attname), so
// unquoted names in rules, which are lower case, match the folded names
// of unquoted identifiers in SQL, and quoted ones match exactly.
//
// A column named exactly by some rule costs one map lookup; any other one
// also the globs with its literal column name ("*.ssn") and those with a
// wild column. It allocates nothing.
func (m *MaskSet) Column(schema, table, column string) (ColumnMask, bool) {
	if m == nil {
		return ColumnMask{}, false
	}
	k := colKey{schema, table, column}
	if cm, ok := m.exact[k]; ok {
		return cm, true
	}
	// k is named by no literal entry, so only wild ones can match it.
	var best *maskRule
	allow := true
	for _, list := range [2][]colGlob{m.byColumn[column], m.anyColumn} {
		for i := range list {
			g := &list[i]
			if g.matchTable(schema, table) && g.column.match(column) {
				if g.rule.stronger(best) {
					best = g.rule
				}
				allow = allow && g.rule.cm.AllowPredicates
			}
		}
	}
	if best == nil {
		return ColumnMask{}, false
	}
	cm := best.cm
	cm.AllowPredicates = allow
	return cm, true
}

// Table reports whether some rule masks, or could mask, a column of
// schema.table: a rule names one of its columns, or a glob matches the
// schema and the table whatever its column part ("*.ssn" could mask a
// column of every table). Detectors are not counted: they apply to every
// table's text values (see Detectors).
func (m *MaskSet) Table(schema, table string) bool {
	if m == nil {
		return false
	}
	if _, ok := m.tables[tableKey{schema, table}]; ok {
		return true
	}
	for i := range m.wild {
		if m.wild[i].matchTable(schema, table) {
			return true
		}
	}
	return false
}

// Detectors returns the names of the detectors (built-in and custom) that
// apply to the text values of columns no rule masks: the union over the
// set's rules, in order of first appearance in the configuration. Build
// custom ones from Engine.MaskConfig. The caller owns the slice.
func (m *MaskSet) Detectors() []string {
	if m == nil {
		return nil
	}
	return slices.Clone(m.detectors)
}

// DetectorStyle is how detector hits are masked: the mask of the
// strongest rule that has detectors. The zero ColumnMask when Detectors
// is empty.
func (m *MaskSet) DetectorStyle() ColumnMask {
	if m == nil {
		return ColumnMask{}
	}
	return m.detectorMask
}

// Style is the strongest style of any rule in the set: the least a value
// derived from masked data in a way that cannot be traced to one column
// should get. "" for a nil set.
func (m *MaskSet) Style() mask.Style {
	if m == nil {
		return ""
	}
	return m.style
}

// Field says whether the JSON value at path (object keys from the root,
// array levels skipped) is masked on an http target, and how: the
// strongest matching rule.
func (m *MaskSet) Field(path []string) (ColumnMask, bool) {
	if m == nil {
		return ColumnMask{}, false
	}
	var best *maskRule
	for _, r := range m.fieldRules {
		for _, g := range r.fields {
			if g.match(path) && r.stronger(best) {
				best = r
			}
		}
	}
	if best == nil {
		return ColumnMask{}, false
	}
	return best.cm, true
}

// HasFields reports whether any rule of the set masks JSON fields.
func (m *MaskSet) HasFields() bool { return m != nil && len(m.fieldRules) > 0 }

// PassNonJSON reports whether a response body that is not JSON may pass
// unmasked: only when every mask rule of the set says non_json: pass.
func (m *MaskSet) PassNonJSON() bool { return m == nil || m.passNonJSON }

// Target is the target the set applies to.
func (m *MaskSet) Target() string {
	if m == nil {
		return ""
	}
	return m.target
}

// Masks returns the masking the subject gets on target, or nil when no
// rule of its policies masks anything there: the proxy's fast path, one
// map lookup and no allocation. The set is shared: read only.
func (s *Subject) Masks(target string) *MaskSet {
	if t := s.tables[target]; t != nil {
		return t.masks
	}
	return nil
}

// MaskConfig returns what a proxy needs to build maskers and detectors
// once, at load time: the hash style's key (nil when not configured) and
// the custom detectors, name → regular expression. Both are copies.
func (e *Engine) MaskConfig() (hashKey []byte, custom map[string]string) {
	if len(e.maskKey) > 0 {
		hashKey = slices.Clone(e.maskKey)
	}
	custom = make(map[string]string, len(e.customDetectors))
	for k, v := range e.customDetectors {
		custom[k] = v
	}
	return hashKey, custom
}
