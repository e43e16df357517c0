package httpproxy

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/policy"
)

func fuzzMaskSet(t testing.TB) *policy.MaskSet {
	cfg, err := config.Parse([]byte(`listen: { http: 127.0.0.1:8080 }
identity: { oidc: [{ issuer: https://idp.example.com, audience: warden }] }
targets: [{ name: api, type: http, url: "http://127.0.0.1:9" }]
policies:
  - name: p
    allow: [{ target: api }]
    mask:
      - { target: api, fields: [secret, "**.token", "a.*.b"], detectors: [email] }
`), "fuzz.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e, err := policy.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e.Bind(&identity.Principal{Subject: "s"}).Masks("api")
}

// FuzzMaskJSON: whatever the body, the masker either refuses it or
// returns valid JSON in which no value of a masked field survives.
func FuzzMaskJSON(f *testing.F) {
	for _, s := range []string{
		`{"secret":"x1","a":{"k":{"b":"x2"}},"n":{"token":["x3",{"y":"x4"}]},"ok":"plain"}`,
		`[{"secret":1.5},{"secret":true},{"secret":null}]`,
		`{"e":"mail me at bob@example.com"}`, `"str"`, `12`, `{"secret":{"deep":["x5"]}}`,
		`{"secret":"a"}{"secret":"b"}`, `{"se\u0063ret":"x6"}`, `{"secret":"x7","secret":"x8"}`,
	} {
		f.Add([]byte(s))
	}
	set := fuzzMaskSet(f)
	ms := newMaskers(nil, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		out, _, err := maskJSONBody(body, set, ms)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("masked output is not JSON: %q -> %q", body, out)
		}
		// Every scalar under a masked key is the replacement.
		var v any
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		var walk func(v any, path []string)
		walk = func(v any, path []string) {
			switch x := v.(type) {
			case map[string]any:
				for k, c := range x {
					walk(c, append(path[:len(path):len(path)], k))
				}
			case []any:
				for _, c := range x {
					walk(c, path)
				}
			default:
				if _, masked := set.Field(path); masked && x != nil && x != "[REDACTED]" {
					t.Fatalf("value %v at %v survived masking: %q -> %q", x, path, body, out)
				}
			}
		}
		walk(v, nil)
	})
}

// FuzzCleanPath: an accepted path has no segment a server could read
// differently.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/v1/a", "/v1/../x", "/%2e%2e/x", "/a%2Fb", "//x", "/a/./b", "/a/", "/%", "/a\\b", "/%00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, escaped string) {
		p, err := cleanPath(escaped)
		if err != nil {
			return
		}
		if !strings.HasPrefix(p, "/") || strings.Contains(p, "\\") || strings.Contains(p, "\x00") {
			t.Fatalf("cleanPath(%q) = %q", escaped, p)
		}
		segs := strings.Split(p[1:], "/")
		for i, s := range segs {
			if s == "." || s == ".." || (s == "" && i != len(segs)-1) {
				t.Fatalf("cleanPath(%q) = %q keeps segment %q", escaped, p, s)
			}
		}
	})
}
