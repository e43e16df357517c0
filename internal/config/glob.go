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
	if s == "" {
		return ObjectGlob{}, errors.New("empty glob")
	}
	var parts []string
	for i := 0; ; {
		part, n, err := parseGlobPart(s[i:])
		if err != nil {
			return ObjectGlob{}, err
		}
		parts = append(parts, part)
		i += n
		if i == len(s) {
			break
		}
		if s[i] != '.' {
			// Only reachable after a quoted part: `"a"b`.
			return ObjectGlob{}, errors.New(`a quoted name must be followed by "." or the end`)
		}
		i++
		if i == len(s) {
			return ObjectGlob{}, errors.New(`empty name after "."`)
		}
	}
	switch len(parts) {
	case 1:
		return ObjectGlob{Name: parts[0]}, nil
	case 2:
		return ObjectGlob{Schema: parts[0], Name: parts[1]}, nil
	}
	return ObjectGlob{}, errors.New("expected schema.name or name (quote names that contain dots)")
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
