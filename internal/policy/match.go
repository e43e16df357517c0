package policy

import (
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/warden-gateway/warden/internal/config"
)

// pattern is one compiled part of an object glob (a schema or a name).
// '*' matches any run of characters and '?' exactly one character, both
// within the part: schema and name are matched separately, so "public.*"
// can never reach into another schema.
type pattern struct {
	wild bool
	lit  string  // !wild: the literal text, escapes removed
	toks []token // wild: the compiled pattern
	// prefix and suffix are the literal ends of a wild pattern, checked
	// first: most candidates fail there, without the general loop.
	prefix, suffix string
}

type tokenKind uint8

const (
	tokLit  tokenKind = iota // text, matched exactly
	tokStar                  // '*'
	tokOne                   // '?'
)

type token struct {
	kind tokenKind
	text string
}

// compilePattern compiles a part as config.ParseObjectGlob leaves it:
// quotes removed, '*' and '?' wild, '\' escaping the next byte.
func compilePattern(s string) pattern {
	var toks []token
	var lit strings.Builder
	wild := false
	flush := func() {
		if lit.Len() > 0 {
			toks = append(toks, token{kind: tokLit, text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 < len(s) {
				i++
				lit.WriteByte(s[i])
			}
		case '*':
			wild = true
			flush()
			// "**" is "*": collapsing keeps matching linear.
			if len(toks) == 0 || toks[len(toks)-1].kind != tokStar {
				toks = append(toks, token{kind: tokStar})
			}
		case '?':
			wild = true
			flush()
			toks = append(toks, token{kind: tokOne})
		default:
			lit.WriteByte(c)
		}
	}
	if !wild {
		return pattern{lit: lit.String()}
	}
	flush()
	p := pattern{wild: true, toks: toks}
	if toks[0].kind == tokLit {
		p.prefix = toks[0].text
	}
	if last := toks[len(toks)-1]; last.kind == tokLit && len(toks) > 1 {
		p.suffix = last.text
	}
	return p
}

// match reports whether s matches the pattern. It backtracks only to the
// most recent '*' (the classic wildcard algorithm), so its cost is bounded
// by len(s) times the pattern length, never exponential.
func (p *pattern) match(s string) bool {
	if !p.wild {
		return s == p.lit
	}
	if !strings.HasPrefix(s, p.prefix) || !strings.HasSuffix(s, p.suffix) || len(s) < len(p.prefix)+len(p.suffix) {
		return false
	}
	toks := p.toks
	ti, si := 0, 0
	starTi, starSi := -1, 0
	for {
		if ti < len(toks) {
			switch t := toks[ti]; t.kind {
			case tokStar:
				starTi, starSi = ti, si
				ti++
				continue
			case tokOne:
				if si < len(s) {
					_, n := utf8.DecodeRuneInString(s[si:])
					si += n
					ti++
					continue
				}
			case tokLit:
				if strings.HasPrefix(s[si:], t.text) {
					si += len(t.text)
					ti++
					continue
				}
			}
		} else if si == len(s) {
			return true
		}
		// Mismatch: let the last '*' swallow one more character.
		if starTi < 0 || starSi >= len(s) {
			return false
		}
		_, n := utf8.DecodeRuneInString(s[starSi:])
		starSi += n
		ti, si = starTi+1, starSi
	}
}

// objKey is a split object name. Commands use name only.
type objKey struct{ schema, name string }

// splitObject splits a sqlfacts object name ("public.orders") into schema
// and name. sqlfacts renders names as PostgreSQL stores them, joined by a
// dot, without quoting; so a name holding a dot ("my.schema".t renders as
// my.schema.t) is ambiguous. Such names, and anything else that does not
// split into two non-empty parts, are reported !ok: they match no rule and
// are denied (fail closed) rather than guessed at.
//
// It slices obj and allocates nothing.
func splitObject(obj string) (objKey, bool) {
	i := strings.IndexByte(obj, '.')
	if i <= 0 || i == len(obj)-1 || strings.IndexByte(obj[i+1:], '.') >= 0 {
		return objKey{}, false
	}
	return objKey{schema: obj[:i], name: obj[i+1:]}, true
}

// globRule is one compiled glob entry with the rule it belongs to.
type globRule struct {
	schema, name pattern
	ref          *ruleRef
}

// ruleSet holds the entries of one kind of rule (allow, deny, …) for one
// action on one target, indexed so that a lookup touches few of them:
// entries without wildcards go into exact (one map lookup for the common
// "select: [public.orders]"), globs with a literal schema ("public.*")
// into bySchema, and only globs with a wild schema ("*.audit_*") are
// tried for every object.
type ruleSet struct {
	exact     map[objKey]*ruleRef
	bySchema  map[string][]globRule // literal schema → globs, in config order
	anySchema []globRule            // wild schema, in config order
}

// errDottedName explains why a glob naming a dotted identifier is refused.
var errDottedName = errors.New(`names containing "." cannot be matched: objects are reported as schema.name without quoting, so they are ambiguous and always denied`)

// add adds an entry.
func (rs *ruleSet) add(g config.ObjectGlob, defaultSchema string, ref *ruleRef) error {
	if strings.Contains(g.Schema, ".") || strings.Contains(g.Name, ".") {
		return errDottedName
	}
	schema := g.Schema
	if !g.Qualified() {
		// An unqualified entry means the target's schema, taken
		// literally even if the schema's name holds a '*'.
		schema = escapeGlob(defaultSchema)
	}
	sp, np := compilePattern(schema), compilePattern(g.Name)
	switch {
	case !sp.wild && !np.wild:
		rs.addExact(objKey{schema: sp.lit, name: np.lit}, ref)
	case !sp.wild:
		rs.addBySchema(sp.lit, globRule{schema: sp, name: np, ref: ref})
	default:
		rs.anySchema = append(rs.anySchema, globRule{schema: sp, name: np, ref: ref})
	}
	return nil
}

// addExact adds an exact entry; the earliest rule to claim a name keeps
// it, so decisions name the earliest rule in the file.
func (rs *ruleSet) addExact(k objKey, ref *ruleRef) {
	if rs.exact == nil {
		rs.exact = map[objKey]*ruleRef{}
	}
	if prev, ok := rs.exact[k]; !ok || ref.order < prev.order {
		rs.exact[k] = ref
	}
}

func (rs *ruleSet) addBySchema(schema string, g globRule) {
	if rs.bySchema == nil {
		rs.bySchema = map[string][]globRule{}
	}
	rs.bySchema[schema] = append(rs.bySchema[schema], g)
}

// merge adds other's entries to rs. Policies are merged in config order,
// so appending keeps every list in config order.
func (rs *ruleSet) merge(other *ruleSet) {
	for k, ref := range other.exact {
		rs.addExact(k, ref)
	}
	for schema, globs := range other.bySchema {
		for _, g := range globs {
			rs.addBySchema(schema, g)
		}
	}
	rs.anySchema = append(rs.anySchema, other.anySchema...)
}

func (rs *ruleSet) empty() bool {
	return len(rs.exact) == 0 && len(rs.bySchema) == 0 && len(rs.anySchema) == 0
}

// match returns the earliest rule (in config order) with an entry matching
// k. The two glob lists are walked merged by order, and the walk stops at
// the first match or once past the exact match's rule.
func (rs *ruleSet) match(k objKey) *ruleRef {
	best := rs.exact[k]
	var a []globRule
	if len(rs.bySchema) > 0 {
		a = rs.bySchema[k.schema]
	}
	b := rs.anySchema
	for len(a) > 0 || len(b) > 0 {
		var g *globRule
		schemaKnown := false
		if len(b) == 0 || (len(a) > 0 && a[0].ref.order < b[0].ref.order) {
			g, a, schemaKnown = &a[0], a[1:], true
		} else {
			g, b = &b[0], b[1:]
		}
		if best != nil && g.ref.order > best.order {
			break
		}
		if (schemaKnown || g.schema.match(k.schema)) && g.name.match(k.name) {
			return g.ref
		}
	}
	return best
}

func escapeGlob(s string) string {
	if !strings.ContainsAny(s, `*?\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '*' || c == '?' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
