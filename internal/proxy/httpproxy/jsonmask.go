package httpproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"sync"

	"github.com/warden-gateway/warden/internal/mask"
	"github.com/warden-gateway/warden/internal/policy"
)

// maskers builds, once, the maskers and detector scanners a response
// filter needs, keyed by what policy says.
type maskers struct {
	hashKey []byte
	custom  map[string]string

	mu       sync.Mutex
	byMask   map[policy.ColumnMask]mask.Masker
	scanners map[string]*mask.Scanner // key: detector names joined by ","
}

func newMaskers(hashKey []byte, custom map[string]string) *maskers {
	return &maskers{hashKey: hashKey, custom: custom, byMask: map[policy.ColumnMask]mask.Masker{}, scanners: map[string]*mask.Scanner{}}
}

func (m *maskers) masker(cm policy.ColumnMask) (mask.Masker, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if mk, ok := m.byMask[cm]; ok {
		return mk, nil
	}
	mk, err := mask.NewMasker(string(cm.Style), cm.Options(m.hashKey))
	if err != nil {
		return mask.Masker{}, err
	}
	m.byMask[cm] = mk
	return mk, nil
}

func (m *maskers) scanner(names []string) (*mask.Scanner, error) {
	if len(names) == 0 {
		return nil, nil
	}
	key := strings.Join(names, ",")
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.scanners[key]; ok {
		return s, nil
	}
	var ds []mask.Detector
	for _, n := range names {
		if d, ok := mask.Builtin(n); ok {
			ds = append(ds, d)
			continue
		}
		re, ok := m.custom[n]
		if !ok {
			return nil, fmt.Errorf("unknown detector %q", n)
		}
		d, err := mask.Regex(n, re)
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
	}
	s := mask.NewScanner(ds...)
	m.scanners[key] = s
	return s, nil
}

// isJSON reports whether a Content-Type is JSON (application/json or a
// +json suffix type).
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// jsonMasker masks one JSON document by a MaskSet's field rules and
// detectors, preserving key order and the document's shape.
type jsonMasker struct {
	set      *policy.MaskSet
	ms       *maskers
	scan     *mask.Scanner
	detector mask.Masker
	count    int
}

var (
	errTrailing = errors.New("data after the JSON document")
	errTooDeep  = errors.New("JSON nested too deeply")
)

// maxJSONDepth bounds nesting: the masker recurses per level, and a
// response of a few MiB of '[' must not exhaust the stack.
const maxJSONDepth = 1000

// maskJSONBody masks body; an error means the body is not one valid JSON
// document and must not be sent.
func maskJSONBody(body []byte, set *policy.MaskSet, ms *maskers) ([]byte, int, error) {
	j := &jsonMasker{set: set, ms: ms}
	if ds := set.Detectors(); len(ds) > 0 {
		s, err := ms.scanner(ds)
		if err != nil {
			return nil, 0, err
		}
		mk, err := ms.masker(set.DetectorStyle())
		if err != nil {
			return nil, 0, err
		}
		j.scan, j.detector = s, mk
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var out bytes.Buffer
	out.Grow(len(body))
	if err := j.value(dec, &out, nil, nil, 0); err != nil {
		return nil, 0, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, 0, errTrailing
	}
	return out.Bytes(), j.count, nil
}

// value copies one JSON value from dec to out. forced is the masker of
// an enclosing masked field: everything inside it is masked.
func (j *jsonMasker) value(dec *json.Decoder, out *bytes.Buffer, path []string, forced *mask.Masker, depth int) error {
	if depth > maxJSONDepth {
		return errTooDeep
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			out.WriteByte('{')
			first := true
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				key, ok := kt.(string)
				if !ok {
					return errors.New("object key is not a string")
				}
				if !first {
					out.WriteByte(',')
				}
				first = false
				if j.scan != nil && forced == nil {
					// A key can carry data too: {"ada@example.com": 12}.
					k, n := j.scan.Redact(key, j.detector)
					j.count += n
					writeString(out, k)
				} else {
					writeString(out, key)
				}
				out.WriteByte(':')
				child := append(path[:len(path):len(path)], key)
				fm := forced
				if fm == nil {
					if cm, ok := j.set.Field(child); ok {
						mk, err := j.ms.masker(cm)
						if err != nil {
							return err
						}
						fm = &mk
					}
				}
				if err := j.value(dec, out, child, fm, depth+1); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil {
				return err
			}
			out.WriteByte('}')
		case '[':
			out.WriteByte('[')
			first := true
			for dec.More() {
				if !first {
					out.WriteByte(',')
				}
				first = false
				if err := j.value(dec, out, path, forced, depth+1); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil {
				return err
			}
			out.WriteByte(']')
		default:
			return fmt.Errorf("unexpected %v", v)
		}
	case string:
		switch {
		case forced != nil:
			j.writeMasked(out, forced, v)
		case j.scan != nil:
			s, n := j.scan.Redact(v, j.detector)
			j.count += n
			writeString(out, s)
		default:
			writeString(out, v)
		}
	case json.Number:
		switch {
		case forced != nil:
			j.writeMasked(out, forced, v.String())
		case j.scan != nil:
			// {"card": 4111111111111111}: a detector hit in a number
			// makes it a masked string.
			if s, n := j.scan.Redact(v.String(), j.detector); n > 0 {
				j.count += n
				writeString(out, s)
				break
			}
			out.WriteString(v.String())
		default:
			out.WriteString(v.String())
		}
	case bool:
		if forced != nil {
			j.writeMasked(out, forced, fmt.Sprint(v))
		} else {
			fmt.Fprint(out, v)
		}
	case nil:
		out.WriteString("null")
	}
	return nil
}

// writeMasked writes a masked scalar: JSON null for style null, else the
// masked text as a string (a masked number cannot stay a number without
// leaking its magnitude).
func (j *jsonMasker) writeMasked(out *bytes.Buffer, mk *mask.Masker, text string) {
	j.count++
	if mk.Null() {
		out.WriteString("null")
		return
	}
	writeString(out, mk.Mask(text))
}

func writeString(out *bytes.Buffer, s string) {
	b, _ := json.Marshal(s) // a Go string always marshals
	out.Write(b)
}
