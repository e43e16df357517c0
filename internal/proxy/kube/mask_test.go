package kube

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fixtures in testdata/apiserver were captured from a real kube-apiserver
// v1.37.2 (see testdata/apiserver/README): Secrets created with
// `kubectl apply` (data and stringData, so the last-applied annotation holds
// both in clear), `kubectl create secret`, `kubectl apply --server-side` and
// `kubectl patch`.
// testdata/apiserver/README says how.
var clearValues = []string{
	"hunter2-clear-value",     // data, via kubectl apply
	"sk-live-CLEARSTRINGDATA", // stringData, via kubectl apply
	"tok-CLEARCREATE-9",       // kubectl create secret generic
	"ssa-CLEARSSA-1",          // kubectl apply --server-side
	"extra-CLEAR-7",           // kubectl patch
}

const maskedText = "[MASKED]"

func testMasker() *SecretMasker {
	return NewSecretMasker(func(string) string { return maskedText })
}

// assertNoClear fails if any clear Secret value, or its base64, is in out.
func assertNoClear(t *testing.T, name string, out []byte) {
	t.Helper()
	for _, v := range clearValues {
		for _, form := range []string{v, base64.StdEncoding.EncodeToString([]byte(v))} {
			if bytes.Contains(out, []byte(form)) {
				t.Errorf("%s: masked output still contains %q", name, form)
			}
		}
	}
}

// assertHadClear makes sure a fixture is worth testing.
func assertHadClear(t *testing.T, name string, in []byte) {
	t.Helper()
	for _, v := range clearValues {
		if bytes.Contains(in, []byte(v)) || bytes.Contains(in, []byte(base64.StdEncoding.EncodeToString([]byte(v)))) {
			return
		}
	}
	t.Fatalf("%s: fixture holds no clear value", name)
}

func readFixtureFile(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join("testdata", "apiserver", name))
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := readFixtureFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMaskJSONAPIServerPayloads(t *testing.T) {
	tests := []struct {
		file string
		want int // values masked
	}{
		// GET one Secret: 2 data values + the annotation's data and stringData.
		{"get.json", 4},
		// GET the SecretList (items carry no kind): db-creds 4, plain 1.
		{"list.json", 5},
		// kubectl get secrets: Table with rows[].object the full Secret.
		{"table-object.json", 5},
		// Table of PartialObjectMetadata: only the annotation carries values.
		{"table-metadata.json", 2},
		// as=PartialObjectMetadataList.
		{"partial-list.json", 2},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			in := readFixture(t, tt.file)
			assertHadClear(t, tt.file, in)
			out, n, err := testMasker().MaskJSON(in)
			if err != nil {
				t.Fatalf("MaskJSON: %v", err)
			}
			if n != tt.want {
				t.Errorf("masked %d values, want %d", n, tt.want)
			}
			assertNoClear(t, tt.file, out)
			if !json.Valid(out) {
				t.Fatalf("output is not JSON: %s", out)
			}
			// Masked data values still decode, to the masked text.
			if !bytes.Contains(out, []byte(base64.StdEncoding.EncodeToString([]byte(maskedText)))) {
				t.Errorf("no base64 masked value in %s", out)
			}
			// Non-secret content survives.
			if !bytes.Contains(out, []byte(`"db-creds"`)) {
				t.Errorf("object name lost: %s", out)
			}
		})
	}
}

func TestMaskJSONSecretShape(t *testing.T) {
	in := readFixture(t, "get.json")
	out, _, err := testMasker().MaskJSON(in)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Kind     string
		Data     map[string][]byte // base64-decoded, as client-go does
		Metadata struct {
			Annotations map[string]string
		}
	}
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatal(err)
	}
	if s.Kind != "Secret" || len(s.Data) != 2 {
		t.Fatalf("shape lost: %+v", s)
	}
	for k, v := range s.Data {
		if string(v) != maskedText {
			t.Errorf("data[%s] = %q", k, v)
		}
	}
	var applied struct {
		Kind       string
		Data       map[string][]byte
		StringData map[string]string
	}
	if err := json.Unmarshal([]byte(s.Metadata.Annotations[LastAppliedAnnotation]), &applied); err != nil {
		t.Fatalf("last-applied is no longer JSON: %v", err)
	}
	if applied.Kind != "Secret" || string(applied.Data["password"]) != maskedText || applied.StringData["api-key"] != maskedText {
		t.Errorf("last-applied not masked field by field: %+v", applied)
	}
}

func TestMaskJSONShapes(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name, body string
		want       int
	}{
		{"List of mixed items", `{"kind":"List","apiVersion":"v1","items":[{"kind":"ConfigMap","apiVersion":"v1","data":{"a":"keep-me"}},{"kind":"Secret","apiVersion":"v1","data":{"a":"` + b64("hunter2-clear-value") + `"}}]}`, 1},
		{"WatchEvent", `{"type":"MODIFIED","object":{"kind":"Secret","apiVersion":"v1","stringData":{"k":"tok-CLEARCREATE-9"}}}`, 1},
		{"Secret nested in a custom resource", `{"kind":"Thing","apiVersion":"x/v1","spec":{"template":{"kind":"Secret","data":{"k":"` + b64("ssa-CLEARSSA-1") + `"}}}}`, 1},
		{"annotation on a Pod names a Secret", `{"kind":"Pod","apiVersion":"v1","metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"kind\":\"Secret\",\"apiVersion\":\"v1\",\"stringData\":{\"a\":\"extra-CLEAR-7\"}}"}}}`, 1},
		{"unparseable annotation on a Secret is masked whole", `{"kind":"Secret","apiVersion":"v1","metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{not json extra-CLEAR-7"}}}`, 1},
		{"kind-less annotation on a Secret", `{"kind":"Secret","apiVersion":"v1","metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"data\":{\"a\":\"` + b64("extra-CLEAR-7") + `\"}}"}}}`, 1},
		{"unicode-escaped kind", `{"kind":"\u0053ecret","apiVersion":"v1","data":{"a":"` + b64("hunter2-clear-value") + `"}}`, 1},
		{"null data", `{"kind":"Secret","apiVersion":"v1","data":null}`, 0},
		{"empty SecretList", `{"kind":"SecretList","apiVersion":"v1","metadata":{},"items":[]}`, 0},
		{"Secret of another group is not a core Secret", `{"kind":"Secret","apiVersion":"example.com/v1","data":{"a":1}}`, 0},
		{"ConfigMap untouched", `{"kind":"ConfigMap","apiVersion":"v1","data":{"a":"keep-me"}}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, n, err := testMasker().MaskJSON([]byte(tt.body))
			if err != nil {
				t.Fatalf("MaskJSON: %v", err)
			}
			if n != tt.want {
				t.Errorf("masked %d, want %d: %s", n, tt.want, out)
			}
			assertNoClear(t, tt.name, out)
			if strings.Contains(tt.body, "keep-me") && !bytes.Contains(out, []byte("keep-me")) {
				t.Errorf("non-Secret value masked: %s", out)
			}
		})
	}
}

func TestMaskJSONRefusesMalformed(t *testing.T) {
	for _, body := range []string{
		``, `{`, `{"kind":"Secret","data":{"a":"aGk="}`, `{"kind":"Secret"} {"kind":"Secret"}`,
		`{"kind":"Secret","data":{"a":"not base64!"}}`,
		`{"kind":"Secret","data":{"a":5}}`,
		`{"kind":"Secret","data":["aGk="]}`,
		`{"kind":"Secret","stringData":{"a":{"b":"c"}}}`,
		`{"kind":"SecretList","items":[{"data":{"a":"x"}}]}`,
		`{"kind":"SecretList","items":["x"]}`,
		`{"kind":"SecretList","items":{"a":{}}}`,
		`{"kind":"Pod","metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{Secret"}}}`,
		`{"kind":"Secret","metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":7}}}`,
		`not json`, `{"a":1}x`,
	} {
		out, _, err := testMasker().MaskJSON([]byte(body))
		if err == nil {
			t.Errorf("MaskJSON(%s) = %s, want error", body, out)
			continue
		}
		if out != nil {
			t.Errorf("MaskJSON(%s) returned a body with its error", body)
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("MaskJSON(%s): %v does not wrap ErrMalformed", body, err)
		}
	}
}

func TestMaskJSONFastPathKeepsBytes(t *testing.T) {
	in := []byte(`{"kind":"PodList","apiVersion":"v1","items":[{"metadata":{"name":"a"}}]}`)
	out, n, err := testMasker().MaskJSON(in)
	if err != nil || n != 0 || !bytes.Equal(in, out) {
		t.Fatalf("MaskJSON = %s, %d, %v", out, n, err)
	}
}

func TestMaskYAML(t *testing.T) {
	for _, tt := range []struct {
		file string
		want int
	}{
		{"get.yaml", 4},         // Accept: application/yaml from the API server
		{"list.yaml", 5},        // the SecretList in YAML
		{"kubectl-get.yaml", 4}, // what `kubectl get secret -o yaml` prints
	} {
		t.Run(tt.file, func(t *testing.T) {
			in := readFixture(t, tt.file)
			assertHadClear(t, tt.file, in)
			out, n, err := testMasker().MaskYAML(in)
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.want {
				t.Errorf("masked %d, want %d", n, tt.want)
			}
			assertNoClear(t, tt.file, out)
			if !bytes.Contains(out, []byte("name: db-creds")) {
				t.Errorf("YAML shape lost:\n%s", out)
			}
		})
	}
	for _, bad := range []string{"kind: Secret\ndata:\n  a: 5\n", "kind: Secret\n---\nkind: Secret\n", "kind: Secret\ndata: {a: b, a: c}\n", "{1: 2, kind: Secret}", ":\n:"} {
		if out, _, err := testMasker().MaskYAML([]byte(bad)); err == nil {
			t.Errorf("MaskYAML(%q) = %s, want error", bad, out)
		}
	}
}

// secondPassMasker masks like testMasker and records every value it is
// handed: after one masking pass a second pass must find only masked values.
type recorder struct{ seen []string }

func (r *recorder) mask(v string) string { r.seen = append(r.seen, v); return maskedText }

func checkFullyMasked(t *testing.T, out []byte) {
	t.Helper()
	var r recorder
	if _, _, err := NewSecretMasker(r.mask).MaskJSON(out); err != nil {
		t.Fatalf("masked output does not mask again: %v\n%s", err, out)
	}
	for _, v := range r.seen {
		if v != maskedText {
			t.Fatalf("a Secret value survived masking: %q in %s", v, out)
		}
	}
}

func FuzzMaskJSON(f *testing.F) {
	for _, name := range []string{"get.json", "list.json", "table-object.json", "table-metadata.json", "partial-list.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "apiserver", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"kind":"SecretList","apiVersion":"v1","items":[{"data":{"a":"aGk="},"stringData":{"b":"c"}}]}`))
	f.Add([]byte(`{"kind":"List","items":[{"kind":"Secret","data":{"a":"aGk="}},{"kind":"Table","rows":[{"object":{"kind":"Secret","stringData":{"x":"y"}}}]}]}`))
	f.Add([]byte(`{"type":"ADDED","object":{"kind":"Secret","metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"kind\":\"Secret\",\"data\":{\"a\":\"aGk=\"}}"}}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, n, err := testMasker().MaskJSON(body)
		if err != nil {
			if out != nil || n != 0 {
				t.Fatalf("error with output")
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON out: %q", out)
		}
		checkFullyMasked(t, out)
	})
}
