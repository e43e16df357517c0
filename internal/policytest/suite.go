package policytest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/policy"
)

// MaxFileBytes bounds the size of a test file, as config.MaxFileBytes
// bounds warden.yaml.
const MaxFileBytes = 4 << 20

// Request kinds: the key of a case that holds its request.
const (
	KindSQL  = "sql"
	KindHTTP = "http"
	KindKube = "kube"
)

// Suite is a parsed test file.
type Suite struct {
	Path  string // the file, as given to Load; "" for Parse without a path
	Cases []Case

	file string // Path, or "tests" when Path is empty; for messages
}

// Case is one test: an identity, a request on a target, and the expected
// decision.
type Case struct {
	Name     string
	Identity Identity
	Target   string

	// Exactly one of SQL, HTTP and Kube is set; Kind names it.
	Kind string
	SQL  string // a query string; may hold several statements
	HTTP string // "GET /v1/invoices/7?expand=lines": method, space, path and query
	Kube string // "delete pods -n staging": a kubectl command (see ParseKubeCommand)
	// Headers are the request headers of an http case ("Content-Type:
	// application/json"), by name as written; nil for other kinds.
	Headers map[string][]string

	Expect         policy.Effect
	Rule           string // "" means any rule
	Policy         string // "" means any policy
	ReasonContains string // "" means any reason

	// Line is the line of the case in the file (its list item).
	Line int
	// Path is the case's key path, "cases[3]", for messages.
	Path string

	lines         map[string]int // key of the case → line
	identityLines map[string]int // key of identity → line
}

// Identity is who a case speaks for: the claims of a verified token.
type Identity struct {
	Sub    string // the token's "sub"; required
	Issuer string // one of the configured issuers; "" means the first
	// Claims are the token's other claims as decoded JSON: strings,
	// float64, bool, nil, []any and map[string]any. "sub" and "iss" are
	// not among them; Principal adds them.
	Claims map[string]any
}

// line returns the line of key ("target", "identity.issuer") within the
// case, or that of its nearest present parent.
func (c *Case) line(key string) int {
	if sub, ok := strings.CutPrefix(key, "identity."); ok {
		if l, ok := c.identityLines[sub]; ok {
			return l
		}
		key = "identity"
	}
	if l, ok := c.lines[key]; ok {
		return l
	}
	return c.Line
}

// Load reads and parses the test file at path.
func Load(path string) (*Suite, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policytest.Load: %w", err)
	}
	defer f.Close()
	// One byte past the limit, so an oversized file is detected rather
	// than truncated into something that might still parse.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("policytest.Load: %w", err)
	}
	return Parse(data, path)
}

// Parse is Load for text already in memory; path names the file in
// messages (it may be ""). Every problem found is reported, as
// errors.Join of *config.Error.
func Parse(data []byte, path string) (*Suite, error) {
	file := path
	if file == "" {
		file = "tests"
	}
	if len(data) > MaxFileBytes {
		return nil, &config.Error{File: file, Msg: fmt.Sprintf("file is larger than %d bytes", MaxFileBytes)}
	}
	root, err := parseDocument(data, file)
	if err != nil {
		return nil, err
	}
	d := &decoder{file: file}
	s := &Suite{Path: path, file: file}
	d.fields(root, "", []string{"cases"}, func(key string, k, v *yaml.Node) {
		if isNull(v) {
			return
		}
		if v.Kind != yaml.SequenceNode {
			d.errorf(v.Line, "cases", "expected a list of test cases, got %s", kindName(v))
			return
		}
		names := map[string]int{}
		for i, item := range v.Content {
			c := d.testCase(item, fmt.Sprintf("cases[%d]", i))
			if c == nil {
				continue
			}
			if c.Name != "" {
				if prev, dup := names[c.Name]; dup {
					d.errorf(c.line("name"), c.Path+".name", "duplicate name %q (first used on line %d)", c.Name, prev)
				} else {
					names[c.Name] = c.line("name")
				}
			}
			s.Cases = append(s.Cases, *c)
		}
	})
	if len(d.errs) == 0 && len(s.Cases) == 0 {
		d.errorf(root.Line, "cases", "no test cases: a test file that tests nothing passes nothing")
	}
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	return s, nil
}

// parseDocument parses exactly one YAML document and returns its root
// mapping node.
func parseDocument(data []byte, file string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &config.Error{File: file, Msg: "empty test file"}
		}
		return nil, &config.Error{File: file, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			line = 0
		}
		return nil, &config.Error{File: file, Line: line, Msg: "more than one YAML document; a test file is a single document"}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &config.Error{File: file, Msg: "empty test file"}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &config.Error{File: file, Line: root.Line, Msg: "expected a mapping with a cases: list at the top level"}
	}
	return root, nil
}

// decoder reads the node tree by hand rather than with yaml.v3's strict
// mode (Decoder.KnownFields): that stops at the first problem and names
// Go types, where an operator wants every problem, by key path and line.
type decoder struct {
	file string
	errs []error
}

func (d *decoder) errorf(line int, path, format string, args ...any) {
	d.errs = append(d.errs, &config.Error{File: d.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// fields checks that n is a mapping whose keys are all in known, each at
// most once, and calls fn for each whose value is not an alias. It
// returns the known keys present (key → line), nil if n is no mapping.
func (d *decoder) fields(n *yaml.Node, path string, known []string, fn func(key string, k, v *yaml.Node)) map[string]int {
	if n.Kind == yaml.AliasNode {
		d.errorf(n.Line, path, "YAML aliases (*name) are not supported")
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "expected a mapping, got %s", kindName(n))
		return nil
	}
	seen := map[string]int{}
	present := map[string]int{}
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
		if !slices.Contains(known, k.Value) {
			if k.Value == "<<" {
				d.errorf(k.Line, p, "YAML merge keys are not supported")
			} else {
				d.errorf(k.Line, p, "unknown key%s", suggest(k.Value, known))
			}
			continue
		}
		present[k.Value] = k.Line
		if v.Kind == yaml.AliasNode {
			d.errorf(v.Line, p, "YAML aliases (*name) are not supported")
			continue
		}
		fn(k.Value, k, v)
	}
	return present
}

// str reads a scalar as text. A null ("key:" or "key: ~") reads as "".
func (d *decoder) str(n *yaml.Node, path string) string {
	if isNull(n) {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(n.Line, path, "expected a string, got %s", kindName(n))
		return ""
	}
	return n.Value
}

var caseKeys = []string{"name", "identity", "target", "sql", "http", "headers", "kube", "expect", "rule", "policy", "reason_contains"}

func (d *decoder) testCase(n *yaml.Node, path string) *Case {
	c := &Case{Line: n.Line, Path: path, identityLines: map[string]int{}}
	var kinds []string
	present := d.fields(n, path, caseKeys, func(key string, k, v *yaml.Node) {
		p := joinPath(path, key)
		switch key {
		case "name":
			c.Name = strings.TrimSpace(d.str(v, p))
		case "identity":
			d.identity(c, v, p)
		case "target":
			c.Target = d.str(v, p)
		case KindSQL, KindHTTP, KindKube:
			s := d.str(v, p)
			if strings.TrimSpace(s) == "" {
				d.errorf(k.Line, p, "must not be empty")
			}
			switch key {
			case KindSQL:
				c.SQL = s
			case KindHTTP:
				c.HTTP = s
			case KindKube:
				c.Kube = s
			}
			kinds = append(kinds, key)
		case "expect":
			switch s := d.str(v, p); s {
			case "allow":
				c.Expect = policy.Allow
			case "deny":
				c.Expect = policy.Deny
			case "review":
				c.Expect = policy.Review
			case "":
				d.errorf(k.Line, p, `required: "allow", "review" or "deny"`)
			default:
				d.errorf(v.Line, p, `%q is not "allow", "review" or "deny"`, s)
			}
		case "headers":
			c.Headers = d.headers(v, p)
		case "rule":
			c.Rule = d.str(v, p)
		case "policy":
			c.Policy = d.str(v, p)
		case "reason_contains":
			c.ReasonContains = d.str(v, p)
		}
	})
	if present == nil {
		return nil
	}
	c.lines = present
	if c.Name == "" {
		d.errorf(c.line("name"), path+".name", "required")
	}
	if _, ok := present["identity"]; !ok {
		d.errorf(c.Line, path+".identity", "required: { sub: ..., claims: {...} }")
	}
	if c.Target == "" {
		d.errorf(c.line("target"), path+".target", "required")
	}
	if _, ok := present["expect"]; !ok {
		d.errorf(c.Line, path+".expect", `required: "allow", "review" or "deny"`)
	}
	if l, ok := present["headers"]; ok && c.HTTP == "" && len(kinds) > 0 {
		d.errorf(l, path+".headers", "headers belong to an http request; this case has %s", kinds[0])
	}
	switch len(kinds) {
	case 0:
		d.errorf(c.Line, path, "no request: give one of sql, http or kube")
	case 1:
		c.Kind = kinds[0]
	default:
		d.errorf(c.line(kinds[1]), path+"."+kinds[1], "a case has exactly one request, and this one also has %s", kinds[0])
	}
	return c
}

// headers reads a mapping of header name to a value or a list of values.
func (d *decoder) headers(n *yaml.Node, path string) map[string][]string {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "expected a mapping of header name to value, got %s", kindName(n))
		return nil
	}
	h := map[string][]string{}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := joinPath(path, k.Value)
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			d.errorf(k.Line, path, "header names must be non-empty strings")
			continue
		}
		if err := checkHeaderName(k.Value); err != nil {
			d.errorf(k.Line, p, "%v", err)
			continue
		}
		canon := http.CanonicalHeaderKey(k.Value)
		if prev, dup := seen[canon]; dup {
			d.errorf(k.Line, p, "duplicate header (first defined on line %d); give several values as a list", prev)
			continue
		}
		seen[canon] = k.Line
		switch v.Kind {
		case yaml.ScalarNode:
			h[k.Value] = []string{d.str(v, p)}
		case yaml.SequenceNode:
			for j, item := range v.Content {
				h[k.Value] = append(h[k.Value], d.str(item, fmt.Sprintf("%s[%d]", p, j)))
			}
		default:
			d.errorf(v.Line, p, "expected a value or a list of values, got %s", kindName(v))
		}
	}
	return h
}

func (d *decoder) identity(c *Case, n *yaml.Node, path string) {
	if isNull(n) {
		d.errorf(n.Line, path, "required: { sub: ..., claims: {...} }")
		return
	}
	present := d.fields(n, path, []string{"sub", "issuer", "claims"}, func(key string, k, v *yaml.Node) {
		p := joinPath(path, key)
		switch key {
		case "sub":
			c.Identity.Sub = d.str(v, p)
			if c.Identity.Sub == "" {
				d.errorf(k.Line, p, "must not be empty (a token without sub is rejected)")
			}
		case "issuer":
			c.Identity.Issuer = d.str(v, p)
		case "claims":
			if isNull(v) {
				return
			}
			if v.Kind != yaml.MappingNode {
				d.errorf(v.Line, p, "expected a mapping of claims, got %s", kindName(v))
				return
			}
			m, _ := d.jsonValue(v, p).(map[string]any)
			for _, reserved := range []struct{ claim, use string }{{"sub", "identity.sub"}, {"iss", "identity.issuer"}} {
				if _, ok := m[reserved.claim]; ok {
					d.errorf(claimLine(v, reserved.claim), joinPath(p, reserved.claim), "set by %s, not in claims", reserved.use)
					delete(m, reserved.claim)
				}
			}
			c.Identity.Claims = m
		}
	})
	if present == nil {
		return
	}
	for key, line := range present {
		c.identityLines[key] = line
	}
	if _, ok := present["sub"]; !ok {
		d.errorf(n.Line, path+".sub", "required (a token without sub is rejected)")
	}
}

// jsonValue converts a YAML node to the value encoding/json would produce
// for the same data in a token: numbers become float64, mappings
// map[string]any, sequences []any. Policy conditions see claims exactly
// as they see a real token's.
func (d *decoder) jsonValue(n *yaml.Node, path string) any {
	switch n.Kind {
	case yaml.AliasNode:
		d.errorf(n.Line, path, "YAML aliases (*name) are not supported")
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				d.errorf(k.Line, path, "claim names must be strings")
				continue
			}
			if k.ShortTag() == "!!merge" {
				d.errorf(k.Line, joinPath(path, k.Value), "YAML merge keys are not supported")
				continue
			}
			p := joinPath(path, k.Value)
			if prev, dup := seen[k.Value]; dup {
				d.errorf(k.Line, p, "duplicate key (first defined on line %d)", prev)
				continue
			}
			seen[k.Value] = k.Line
			m[k.Value] = d.jsonValue(v, p)
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			s = append(s, d.jsonValue(item, fmt.Sprintf("%s[%d]", path, i)))
		}
		return s
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err == nil {
				return b
			}
		case "!!int", "!!float":
			var f float64
			if err := n.Decode(&f); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				return f
			}
			d.errorf(n.Line, path, "%s is not a number JSON can hold", n.Value)
			return nil
		case "!!str", "!!timestamp":
			// A timestamp stays text: JWT dates are numbers (NumericDate),
			// so a date written in YAML is most likely meant as a string.
			return n.Value
		}
		d.errorf(n.Line, path, "unsupported YAML value of type %s", n.ShortTag())
	}
	return nil
}

// claimLine finds the line of a top-level claim key.
func claimLine(claims *yaml.Node, key string) int {
	for i := 0; i+1 < len(claims.Content); i += 2 {
		if claims.Content[i].Value == key {
			return claims.Content[i].Line
		}
	}
	return claims.Line
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
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

// suggest offers the closest known key for a misspelt one.
func suggest(key string, known []string) string { return config.Suggest(key, known) }
