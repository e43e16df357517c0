package config

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ObjectGlob is one parsed entry of a sql rule: a pattern for the schema
// and one for the object name.
//
// Syntax, following PostgreSQL's own identifier rules so that an entry
// reads like the SQL it governs:
//
//	orders              unqualified: the target's schema (Schema == "")
//	public.orders       schema-qualified
//	public.*            '*' matches any run of characters within one part,
//	*.audit_?           '?' matches exactly one character
//	public."Order Items" a quoted part keeps case, spaces, dots; "" is a quote
//	public.a\*b         '\' makes the next '*', '?' or '\' literal
//
// Unquoted parts may not contain upper-case letters: PostgreSQL folds
// unquoted names to lower case, so "public.Orders" would be ambiguous
// between the table orders and the table "Orders". Write either
// public.orders or public."Orders".
//
// In Schema and Name the quotes are removed and "" is unescaped; '*', '?'
// and backslash escapes are kept, for the matcher (package policy).
type ObjectGlob struct {
	Schema string // pattern for the schema; "" for an unqualified entry
	Name   string // pattern for the object name; never empty
}

// Qualified reports whether the entry names its schema.
func (g ObjectGlob) Qualified() bool { return g.Schema != "" }

// ParseObjectGlob parses one sql rule entry (see ObjectGlob).
func ParseObjectGlob(s string) (ObjectGlob, error) {
	parts, err := parseGlobParts(s)
	if err != nil {
		return ObjectGlob{}, err
	}
	switch len(parts) {
	case 1:
		return ObjectGlob{Name: parts[0]}, nil
	case 2:
		return ObjectGlob{Schema: parts[0], Name: parts[1]}, nil
	}
	return ObjectGlob{}, errors.New("expected schema.name or name (quote names that contain dots)")
}

// ColumnGlob is one parsed entry of a mask rule's columns: patterns for
// the schema, the table and the column, in the syntax of ObjectGlob
// ('*' and '?' within one part, quoted parts keep case, unquoted parts
// are lower case).
//
//	public.customers.email   schema.table.column
//	customers.email          table.column in any schema (Schema == "")
//	*.ssn                    the column ssn of every table, in any schema
//	public.*.card_number     card_number of every table in public
//
// Unlike a sql rule entry, a two-part entry does not mean the target's
// schema: a mask protects a kind of data wherever it lives, so the
// shorter form reaches further, not less far (issue 5). Names are
// matched as PostgreSQL stores them (the catalog's attname and relname),
// so public."Email" and public.email are different columns.
type ColumnGlob struct {
	Schema string // pattern for the schema; "" for table.column (any schema)
	Table  string // pattern for the table (or view); never empty
	Column string // pattern for the column; never empty
}

// Qualified reports whether the entry names its schema.
func (g ColumnGlob) Qualified() bool { return g.Schema != "" }

// ParseColumnGlob parses one entry of a mask rule's columns (see
// ColumnGlob).
func ParseColumnGlob(s string) (ColumnGlob, error) {
	parts, err := parseGlobParts(s)
	if err != nil {
		return ColumnGlob{}, err
	}
	switch len(parts) {
	case 2:
		return ColumnGlob{Table: parts[0], Column: parts[1]}, nil
	case 3:
		return ColumnGlob{Schema: parts[0], Table: parts[1], Column: parts[2]}, nil
	}
	return ColumnGlob{}, errors.New("expected schema.table.column or table.column (quote names that contain dots)")
}

// parseGlobParts splits s into its dot-separated parts, each as
// parseGlobPart leaves it.
func parseGlobParts(s string) ([]string, error) {
	if s == "" {
		return nil, errors.New("empty glob")
	}
	var parts []string
	for i := 0; ; {
		part, n, err := parseGlobPart(s[i:])
		if err != nil {
			return nil, err
		}
		parts = append(parts, part)
		i += n
		if i == len(s) {
			return parts, nil
		}
		if s[i] != '.' {
			// Only reachable after a quoted part: `"a"b`.
			return nil, errors.New(`a quoted name must be followed by "." or the end`)
		}
		i++
		if i == len(s) {
			return nil, errors.New(`empty name after "."`)
		}
	}
}

// parseGlobPart parses one dot-separated part from the start of s and
// returns it and the number of bytes consumed.
func parseGlobPart(s string) (string, int, error) {
	if s == "" || s[0] == '.' {
		return "", 0, errors.New(`empty name before "."`)
	}
	var b strings.Builder
	if s[0] == '"' {
		for i := 1; i < len(s); {
			switch c := s[i]; {
			case c == '"' && i+1 < len(s) && s[i+1] == '"':
				b.WriteByte('"')
				i += 2
			case c == '"':
				if b.Len() == 0 {
					return "", 0, errors.New("zero-length quoted name")
				}
				return b.String(), i + 1, nil
			case c == '\\':
				if i+1 >= len(s) || !isGlobEscapable(s[i+1]) {
					return "", 0, errors.New(`"\" must be followed by "*", "?" or "\"`)
				}
				b.WriteString(s[i : i+2])
				i += 2
			default:
				b.WriteByte(c)
				i++
			}
		}
		return "", 0, errors.New("unterminated quoted name")
	}
	i := 0
	for i < len(s) && s[i] != '.' {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\\':
			if i+1 >= len(s) || !isGlobEscapable(s[i+1]) {
				return "", 0, errors.New(`"\" must be followed by "*", "?" or "\"`)
			}
			b.WriteString(s[i : i+2])
			i += 2
			continue
		case r == '"':
			return "", 0, errors.New(`a quote may only open a name ("Name")`)
		case r == '*' || r == '?' || r == '_' || r == '$' || unicode.IsDigit(r):
		case unicode.IsUpper(r):
			return "", 0, errors.New("unquoted names are lower case in PostgreSQL: write the name in lower case, or quote it to match case exactly")
		case unicode.IsLetter(r):
		case r == utf8.RuneError && size == 1:
			return "", 0, errors.New("invalid UTF-8")
		default:
			return "", 0, errors.New("unquoted names may contain only letters, digits, _, $ and the wildcards * and ?; quote other names")
		}
		b.WriteString(s[i : i+size])
		i += size
	}
	return b.String(), i, nil
}

func isGlobEscapable(c byte) bool { return c == '*' || c == '?' || c == '\\' }

// KubeVerbs are the verbs a kubernetes rule may name: the API server's,
// "*", and exec, attach and port-forward, which stand for the pods/exec,
// pods/attach and pods/portforward subresources.
var KubeVerbs = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "proxy",
	"exec", "attach", "port-forward", "*"}

// CheckPathGlob checks an http rule's path glob: it starts with '/', and
// "**" stands alone as a segment. '*' matches within one segment.
func CheckPathGlob(s string) error {
	if !strings.HasPrefix(s, "/") {
		return errors.New("must start with /")
	}
	for _, seg := range strings.Split(s[1:], "/") {
		if strings.Contains(seg, "**") && seg != "**" {
			return errors.New(`"**" must be a whole segment ("/v1/**", not "/v1/a**")`)
		}
		if seg == "." || seg == ".." {
			return errors.New("dot segments never match (warden refuses such request paths)")
		}
	}
	return nil
}

// CheckFieldGlob checks a mask rule's JSON field path: dot-separated
// keys, '*' for one key, "**" for any run of keys.
func CheckFieldGlob(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	for _, seg := range strings.Split(s, ".") {
		if seg == "" {
			return errors.New("empty key (two dots, or a leading or trailing dot)")
		}
		if strings.Contains(seg, "**") && seg != "**" {
			return errors.New(`"**" must be a whole key`)
		}
	}
	return nil
}
