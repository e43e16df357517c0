package kube

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

// LastAppliedAnnotation is where `kubectl apply` keeps the object it applied.
// For a Secret that copy holds data and stringData in clear.
const LastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// ErrMalformed is wrapped by masking errors: the body is not a well-formed
// document of the shape the API server sends, so nothing of it may be
// forwarded.
var ErrMalformed = errors.New("kube: response body cannot be masked")

// SecretMasker masks the values of Secrets in API server responses. It is
// safe for concurrent use if its mask function is.
type SecretMasker struct {
	mask func(string) string
}

// NewSecretMasker returns a masker that replaces each Secret value v with
// maskValue(v). maskValue receives the clear (base64-decoded) value.
func NewSecretMasker(maskValue func(string) string) *SecretMasker {
	return &SecretMasker{mask: maskValue}
}

// MaskJSON masks the data and stringData values of every Secret in a JSON
// body: a Secret, a SecretList (whose items carry no kind), a List with Secret
// items, a meta.k8s.io Table whose rows[].object is a Secret, a WatchEvent,
// and Secrets nested anywhere else. It also masks the Secret inside a
// kubectl.kubernetes.io/last-applied-configuration annotation, on whatever
// object it is found (a Table of PartialObjectMetadata carries it too).
//
// data values become base64 of the masked text, so clients that decode still
// work; stringData values become the masked text. It returns the new body and
// the number of values masked. On error (malformed JSON, trailing data, a
// Secret whose values are not strings or not base64) it returns no body: the
// caller must refuse the response.
//
// Whenever a Secret may be present the body is re-encoded from what warden
// parsed, so the client sees exactly the document warden inspected (object
// keys come out sorted).
func (m *SecretMasker) MaskJSON(body []byte) ([]byte, int, error) {
	if !mayHoldSecret(body) {
		// No Secret can be spelled without the word or a \u escape.
		if !json.Valid(body) {
			return nil, 0, fmt.Errorf("%w: invalid JSON", ErrMalformed)
		}
		return body, 0, nil
	}
	v, err := decodeJSON(body)
	if err != nil {
		return nil, 0, err
	}
	n, err := m.walk(v, false)
	if err != nil {
		return nil, 0, err
	}
	out, err := encodeJSON(v)
	if err != nil {
		return nil, 0, err
	}
	return out, n, nil
}

// MaskYAML is MaskJSON for application/yaml responses (one document). The
// result is re-encoded YAML with two-space indentation.
func (m *SecretMasker) MaskYAML(body []byte) ([]byte, int, error) {
	dec := yaml.NewDecoder(bytes.NewReader(body))
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return body, 0, nil // empty document
		}
		return nil, 0, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, 0, fmt.Errorf("%w: more than one YAML document", ErrMalformed)
	}
	n, err := m.walk(v, false)
	if err != nil {
		return nil, 0, err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := enc.Close(); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return buf.Bytes(), n, nil
}

// mayHoldSecret reports whether a JSON text could decode to a string "Secret"
// or "SecretList" anywhere, including inside a JSON-in-a-string annotation.
func mayHoldSecret(b []byte) bool {
	return bytes.Contains(b, []byte("Secret")) || bytes.Contains(b, []byte(`\u`))
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: data after the JSON value", ErrMalformed)
	}
	return v, nil
}

func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// walk masks every Secret in a decoded document. secret says v is known to be
// a Secret although it may carry no kind (an item of a SecretList).
func (m *SecretMasker) walk(v any, secret bool) (int, error) {
	switch t := v.(type) {
	case map[string]any:
		return m.walkObject(t, secret)
	case []any:
		n := 0
		for _, e := range t {
			k, err := m.walk(e, false)
			if err != nil {
				return 0, err
			}
			n += k
		}
		return n, nil
	case map[any]any:
		// Only YAML produces these (a non-string key); the API server never does.
		return 0, fmt.Errorf("%w: mapping with a non-string key", ErrMalformed)
	}
	return 0, nil
}

func (m *SecretMasker) walkObject(o map[string]any, secret bool) (int, error) {
	kind, _ := o["kind"].(string)
	apiVersion, _ := o["apiVersion"].(string)
	core := apiVersion == "v1" || apiVersion == ""
	if kind == "Secret" && core {
		secret = true
	}
	n := 0
	if secret {
		for _, field := range []string{"data", "stringData"} {
			k, err := m.maskValues(o, field)
			if err != nil {
				return 0, err
			}
			n += k
		}
	}
	k, err := m.maskLastApplied(o, secret)
	if err != nil {
		return 0, err
	}
	n += k

	itemsAreSecrets := kind == "SecretList" && core
	for key, child := range o {
		if secret && (key == "data" || key == "stringData") {
			continue
		}
		if key == "items" && itemsAreSecrets {
			items, ok := child.([]any)
			if !ok && child != nil {
				return 0, fmt.Errorf("%w: SecretList items is not a list", ErrMalformed)
			}
			for _, it := range items {
				obj, ok := it.(map[string]any)
				if !ok {
					return 0, fmt.Errorf("%w: SecretList item is not an object", ErrMalformed)
				}
				k, err := m.walkObject(obj, true)
				if err != nil {
					return 0, err
				}
				n += k
			}
			continue
		}
		k, err := m.walk(child, false)
		if err != nil {
			return 0, err
		}
		n += k
	}
	return n, nil
}

// maskValues masks o[field] of a Secret: data values are base64 and stay
// base64, stringData values are clear text.
func (m *SecretMasker) maskValues(o map[string]any, field string) (int, error) {
	raw, ok := o[field]
	if !ok || raw == nil {
		return 0, nil
	}
	vals, ok := raw.(map[string]any)
	if !ok {
		return 0, fmt.Errorf("%w: Secret %s is not an object", ErrMalformed, field)
	}
	n := 0
	for k, v := range vals {
		if v == nil {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return 0, fmt.Errorf("%w: Secret %s value %q is not a string", ErrMalformed, field, k)
		}
		if field == "data" {
			clear, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return 0, fmt.Errorf("%w: Secret data value %q is not base64", ErrMalformed, k)
			}
			vals[k] = base64.StdEncoding.EncodeToString([]byte(m.mask(string(clear))))
		} else {
			vals[k] = m.mask(s)
		}
		n++
	}
	return n, nil
}

// maskLastApplied masks the Secret kept in the last-applied-configuration
// annotation of o. secret says o itself is a Secret: then the annotation is
// the Secret even without a kind, and an annotation that cannot be parsed is
// masked whole rather than trusted.
func (m *SecretMasker) maskLastApplied(o map[string]any, secret bool) (int, error) {
	md, ok := o["metadata"].(map[string]any)
	if !ok {
		return 0, nil
	}
	ann, ok := md["annotations"].(map[string]any)
	if !ok {
		return 0, nil
	}
	raw, ok := ann[LastAppliedAnnotation]
	if !ok || raw == nil {
		return 0, nil
	}
	s, ok := raw.(string)
	if !ok {
		return 0, fmt.Errorf("%w: %s is not a string", ErrMalformed, LastAppliedAnnotation)
	}
	if !secret && !mayHoldSecret([]byte(s)) {
		return 0, nil
	}
	v, err := decodeJSON([]byte(s))
	var n int
	if err == nil {
		if obj, isObj := v.(map[string]any); isObj {
			n, err = m.walkObject(obj, secret)
		} else {
			n, err = m.walk(v, false)
		}
	}
	var out []byte
	if err == nil && n > 0 {
		out, err = encodeJSON(v)
	}
	switch {
	case err != nil && secret:
		// Not JSON kubectl wrote, or not a Secret we can mask field by field:
		// the whole copy goes.
		ann[LastAppliedAnnotation] = m.mask(s)
		return 1, nil
	case err != nil:
		// Not parseable and not on a Secret. It still spells "Secret"
		// somewhere, so refuse rather than guess.
		return 0, fmt.Errorf("%w: %s: %w", ErrMalformed, LastAppliedAnnotation, err)
	case n > 0:
		ann[LastAppliedAnnotation] = string(out)
	}
	return n, nil
}
