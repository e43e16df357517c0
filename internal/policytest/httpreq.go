package policytest

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/warden-gateway/warden/internal/policy"
)

// ParseHTTPRequest parses "METHOD /path?query" (the request line a
// person writes: "GET /v1/invoices/7?expand=lines") into the request
// policy decides for an http target. The path is the one below the
// target's /t/<target> prefix. header may be nil.
//
// The path is checked as the http proxy checks it before asking policy:
// a path with dot segments, empty segments or an encoded slash is
// refused, because its decoded form could name another resource than
// the one a rule's glob sees. Methods are case-sensitive (RFC 9110
// §9.1): "get" is not GET, so a lower-case method is an error rather
// than a request no rule matches.
func ParseHTTPRequest(s string, header http.Header) (*policy.HTTPRequest, error) {
	method, target, ok := strings.Cut(strings.TrimSpace(s), " ")
	target = strings.TrimSpace(target)
	if !ok || method == "" || target == "" {
		return nil, fmt.Errorf("http request %q: want \"METHOD /path\", e.g. \"GET /v1/invoices/7\"", s)
	}
	if strings.ContainsAny(target, " \t") {
		return nil, fmt.Errorf("http request %q: the path has a space; write it %%20-encoded", s)
	}
	for _, c := range method {
		if !isTokenChar(c) {
			return nil, fmt.Errorf("http request %q: %q is not an HTTP method", s, method)
		}
	}
	if strings.ToUpper(method) != method {
		return nil, fmt.Errorf("http request %q: methods are case-sensitive; write %s", s, strings.ToUpper(method))
	}
	if !strings.HasPrefix(target, "/") {
		return nil, fmt.Errorf("http request %q: the path must start with '/' (the path below /t/<target>, not a URL)", s)
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, fmt.Errorf("http request %q: %w", s, err)
	}
	if u.Fragment != "" || strings.Contains(target, "#") {
		return nil, fmt.Errorf("http request %q: a fragment (#...) is never sent to a server", s)
	}
	if strings.Contains(strings.ToLower(u.EscapedPath()), "%2f") {
		return nil, fmt.Errorf("http request %q: an encoded slash (%%2F) in the path is refused by the proxy", s)
	}
	if u.Path != "/" {
		for _, seg := range strings.Split(u.Path[1:], "/") {
			if seg == "" || seg == "." || seg == ".." {
				return nil, fmt.Errorf("http request %q: empty, '.' and '..' path segments are refused by the proxy", s)
			}
		}
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("http request %q: query: %w", s, err)
	}
	h := http.Header{}
	for k, vs := range header {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	return &policy.HTTPRequest{Method: method, Path: u.Path, Query: q, Header: h}, nil
}

// ParseHeader parses a "Name: value" header line, as curl -H takes it.
func ParseHeader(s string) (name, value string, err error) {
	name, value, ok := strings.Cut(s, ":")
	if !ok {
		return "", "", fmt.Errorf("header %q: want \"Name: value\"", s)
	}
	if err := checkHeaderName(name); err != nil {
		return "", "", fmt.Errorf("header %q: %w", s, err)
	}
	return name, strings.TrimSpace(value), nil
}

// checkHeaderName requires an RFC 9110 §5.1 field name (a token).
func checkHeaderName(name string) error {
	if name == "" {
		return errors.New("empty header name")
	}
	for _, c := range name {
		if !isTokenChar(c) {
			return fmt.Errorf("%q is not a valid header name", name)
		}
	}
	return nil
}

// isTokenChar reports whether c may appear in an RFC 9110 token.
func isTokenChar(c rune) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.ContainsRune("!#$%&'*+-.^_`|~", c)
}
