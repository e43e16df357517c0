package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// MaxFileBytes bounds the size of a configuration file. A warden.yaml is a
// few kilobytes; anything near this is a mistake (or an attack on the
// parser), not a configuration.
const MaxFileBytes = 4 << 20

// Error is one problem in a configuration file, positioned at the key it
// concerns. Parse and Load return every problem they find, joined with
// errors.Join; use errors.As to get at them one by one.
//
// Error never contains a secret: messages name keys and environment
// variables, and never echo the value of a password.
type Error struct {
	File string // the config file, as given to Load/Parse
	Line int    // 1-based; 0 when the problem has no position
	Path string // key path, e.g. "targets[0].address"; "" for the whole file
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads, expands, decodes, defaults and validates the configuration
// file at path. Relative paths inside it resolve against its directory
// (see Config.Resolve).
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config.Load: %w", err)
	}
	defer f.Close()
	// Read one byte past the limit so an oversized file is detected rather
	// than silently truncated into something that might still parse.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config.Load: %w", err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("config.Load: %s: file is larger than %d bytes", path, MaxFileBytes)
	}
	return Parse(data, path)
}

// Parse is Load for configuration text already in memory; path names the
// file in error messages and anchors relative paths (it may be "").
//
// Processing order, and why:
//  1. YAML is parsed into a node tree (syntax errors stop here).
//  2. The tree is checked against the Config structs: unknown keys, wrong
//     shapes and unparseable scalars are errors naming key path and line.
//     ${ENV} references in scalar values are expanded on the way, after
//     parsing, so an environment variable can never inject YAML structure.
//  3. The tree is decoded, defaults are applied, and the result validated.
//
// All problems of a stage are reported together (errors.Join of *Error).
func Parse(data []byte, path string) (*Config, error) {
	return parse(data, path, os.LookupEnv)
}

// parse is Parse with an injectable environment, for tests.
func parse(data []byte, path string, lookup func(string) (string, bool)) (*Config, error) {
	file := path
	if file == "" {
		file = "config"
	}
	if len(data) > MaxFileBytes {
		return nil, &Error{File: file, Msg: fmt.Sprintf("file is larger than %d bytes", MaxFileBytes)}
	}

	root, err := parseDocument(data, file)
	if err != nil {
		return nil, err
	}

	d := &decoder{file: file, lookup: lookup, lines: map[string]int{}}
	d.walk(root, reflect.TypeFor[Config](), "")
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}

	cfg := &Config{}
	if err := root.Decode(cfg); err != nil {
		// The walk above checked every scalar this decode touches, so this
		// is a bug rather than a user error; still, never echo the value
		// (yaml.v3 quotes it, and it might be a password).
		return nil, &Error{File: file, Msg: "cannot decode configuration (internal error)"}
	}
	cfg.Path = path
	cfg.lines = d.lines
	cfg.file = file

	cfg.setDefaults()
	if errs := cfg.validate(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

// parseDocument parses exactly one YAML document and returns its root
// mapping node.
func parseDocument(data []byte, file string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: file, Msg: "empty configuration"}
		}
		return nil, &Error{File: file, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			line = 0
		}
		return nil, &Error{File: file, Line: line, Msg: "more than one YAML document; warden.yaml is a single document"}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &Error{File: file, Msg: "empty configuration"}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: file, Line: root.Line, Msg: "expected a mapping at the top level"}
	}
	return root, nil
}

// decoder walks a YAML node tree alongside the Go type it will decode
// into. yaml.v3's own strict mode (Decoder.KnownFields) works on bytes,
// not on a node tree we have already rewritten by expanding ${ENV}, and it
// stops at the first error; walking ourselves reports every problem with
// its key path and line.
type decoder struct {
	file   string
	lookup func(string) (string, bool)
	lines  map[string]int // key path → line of the key (or sequence item)
	errs   []error
}

func (d *decoder) errorf(line int, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

var (
	durationType  = reflect.TypeFor[time.Duration]()
	maskStyleType = reflect.TypeFor[MaskStyle]()
)

func (d *decoder) walk(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode {
		// Aliases make one node appear under many key paths (and are the
		// vehicle of "billion laughs" documents); a gateway config gains
		// little from them, so refuse them outright.
		d.errorf(n.Line, path, "YAML aliases (*name) are not supported")
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType || (t.Kind() != reflect.Struct && t.Kind() != reflect.Slice && t.Kind() != reflect.Map):
		d.scalar(n, t, path)
	case t.Kind() == reflect.Struct:
		d.mapping(n, t, path)
	case t.Kind() == reflect.Slice:
		// An explicit null ("key:" or "key: ~") leaves the zero value.
		if isNull(n) {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.errorf(n.Line, path, "expected a list, got %s", kindName(n))
			return
		}
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.lines[p] = item.Line
			d.walk(item, t.Elem(), p)
		}
	case t.Kind() == reflect.Map:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.errorf(n.Line, path, "expected a mapping, got %s", kindName(n))
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				d.errorf(k.Line, path, "keys must be strings")
				continue
			}
			p := joinPath(path, k.Value)
			if prev, dup := seen[k.Value]; dup {
				d.errorf(k.Line, p, "duplicate key (first defined on line %d)", prev)
				continue
			}
			seen[k.Value] = k.Line
			d.lines[p] = k.Line
			d.walk(v, t.Elem(), p)
		}
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func (d *decoder) mapping(n *yaml.Node, t reflect.Type, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "expected a mapping, got %s", kindName(n))
		return
	}
	fields := yamlFields(t)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k.Line, path, "keys must be strings")
			continue
		}
		p := joinPath(path, k.Value)
		if prev, dup := seen[k.Value]; dup {
			d.errorf(k.Line, p, "duplicate key (first defined on line %d)", prev)
			continue
		}
		seen[k.Value] = k.Line
		f, ok := fields[k.Value]
		if !ok {
			if k.Value == "<<" {
				d.errorf(k.Line, p, "YAML merge keys are not supported")
			} else {
				d.errorf(k.Line, p, "unknown key%s", suggest(k.Value, fields))
			}
			continue
		}
		d.lines[p] = k.Line
		d.walk(v, f.Type, p)
	}
}

// scalar expands ${ENV} references in a scalar value and checks that the
// result decodes into t. Its messages never include the value: it might
// be a password.
func (d *decoder) scalar(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n.Line, path, "expected %s, got %s", typeName(t), kindName(n))
		return
	}
	if t == maskStyleType && isNull(n) && n.Value != "" {
		// "style: null" names the style null (see MaskStyle).
		n.Value, n.Tag, n.Style = string(StyleNull), "!!str", 0
	}
	if strings.Contains(n.Value, "$") {
		v, errs := expandWith(n.Value, d.lookup)
		for _, e := range errs {
			d.errorf(n.Line, path, "%s", e)
		}
		if len(errs) > 0 {
			return
		}
		if v != n.Value {
			n.Value = v
			// Re-resolve the expanded text as if it had been written
			// plain, so "${MAX_BYTES}" can fill an integer. Text that
			// would resolve to null ("null", "~") stays a string: an
			// environment variable must not erase a value.
			n.Style = 0
			n.Tag = ""
			if n.ShortTag() == "!!null" && v != "" {
				n.Tag = "!!str"
			}
		}
	}
	if isNull(n) {
		return
	}
	probe := reflect.New(t)
	if err := n.Decode(probe.Interface()); err != nil {
		d.errorf(n.Line, path, "expected %s", typeName(t))
	}
}

// expandWith replaces ${NAME} and ${NAME:-default} in s, shell-style: the
// default applies when NAME is unset or empty. $${ writes a literal ${. A
// dollar sign not followed by { is kept as is, so a password with a lone $
// survives. Errors name the variable, never its value.
func expandWith(s string, lookup func(string) (string, bool)) (string, []string) {
	var b strings.Builder
	var errs []string
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' {
			b.WriteByte(c)
			i++
			continue
		}
		if strings.HasPrefix(s[i:], "$${") {
			b.WriteString("${")
			i += 3
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			b.WriteByte(c)
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			errs = append(errs, "unterminated ${ (write $${ for a literal ${)")
			return s, errs
		}
		ref := s[i+2 : i+2+end]
		i += 2 + end + 1
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			errs = append(errs, fmt.Sprintf("invalid environment variable reference ${%s}", sanitizeRef(name)))
			continue
		}
		val, ok := lookup(name)
		switch {
		case ok && (val != "" || !hasDef):
			b.WriteString(val)
		case hasDef:
			b.WriteString(def)
		default:
			errs = append(errs, fmt.Sprintf("environment variable %s is not set (use ${%s:-default} for an optional value)", name, name))
		}
	}
	return b.String(), errs
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// sanitizeRef keeps an invalid reference readable in an error message
// without letting it grow unbounded.
func sanitizeRef(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strconv.Quote(s)[1 : len(strconv.Quote(s))-1]
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields maps yaml key → struct field for t.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	m := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f
	}
	return m
}

// suggest offers the closest known key for a misspelt one.
func suggest(key string, fields map[string]reflect.StructField) string {
	known := make([]string, 0, len(fields))
	for k := range fields {
		known = append(known, k)
	}
	return Suggest(key, known)
}

// Suggest returns ` (did you mean "k"?)` for the known key closest to a
// misspelt one (edit distance under 3), or "". Other strict YAML readers
// (policy tests) use it so their errors read like warden.yaml's.
func Suggest(key string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if dist := editDistance(strings.ToLower(key), k); dist < bestDist || (dist == bestDist && best != "" && k < best) {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a scalar"
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

func typeName(t reflect.Type) string {
	if t == durationType {
		return "a duration like 30s or 5m"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a " + t.String()
}

// Resolve returns p resolved against the directory of the config file:
// absolute paths are returned unchanged, relative ones are taken relative
// to the file (not to the process's working directory, which differs
// between `warden serve` under systemd and an operator's shell). Empty
// stays empty.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.Path == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.Path), p)
}
