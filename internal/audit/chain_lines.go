package audit

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ExportLine is one line of an audit export in JSON lines: the event's own
// fields, flattened, plus the chain link that lets anyone holding the
// export re-verify it without the database (VerifyLines).
type ExportLine struct {
	Event
	HashVersion int    `json:"hash_version"` // version of the canonical encoding (see Hash)
	PrevHash    string `json:"prev_hash"`    // hex
	Hash        string `json:"hash"`         // hex

	// Raw holds the exact bytes of every string field that is not valid
	// UTF-8 (SQL text can carry any bytes), keyed by its JSON name, with
	// groups as "groups.N". JSON text is UTF-8, so such a field shows its
	// text with each bad byte replaced by U+FFFD, which is what a reader
	// sees; the hash covers the original bytes, which are here (base64, as
	// encoding/json writes a []byte). Absent when every string is valid
	// UTF-8, which is nearly always.
	Raw map[string][]byte `json:"raw,omitempty"`
}

// NewExportLine returns the export line of a stored record.
func NewExportLine(version int, ev *Event, prevHash, hash []byte) *ExportLine {
	l := &ExportLine{
		Event:       *ev,
		HashVersion: version,
		PrevHash:    hex.EncodeToString(prevHash),
		Hash:        hex.EncodeToString(hash),
	}
	for name, p := range stringFields(&l.Event) {
		if !utf8.ValidString(*p) {
			if l.Raw == nil {
				l.Raw = map[string][]byte{}
			}
			l.Raw[name] = []byte(*p)
			// encoding/json would write each bad byte as the escape
			// \ufffd, and the same text decoded and written again as a
			// literal U+FFFD; replacing them first gives one form.
			*p = jsonLossy([]byte(*p))
		}
	}
	return l
}

// MarshalLine returns l as one line of an export: compact JSON without
// HTML escaping (SQL compares with < and >), then a newline. This is the
// only form VerifyLines accepts.
func (l *ExportLine) MarshalLine() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(l); err != nil { // Encode appends the newline
		return nil, fmt.Errorf("audit: export line %d: %w", l.ID, err)
	}
	return buf.Bytes(), nil
}

// restore puts the exact bytes from Raw back into the event, after
// checking that each visible field is what encoding/json makes of them, so
// that a line cannot show one text and verify another.
func (l *ExportLine) restore() error {
	if len(l.Raw) == 0 {
		return nil
	}
	fields := map[string]*string{}
	for name, p := range stringFields(&l.Event) {
		fields[name] = p
	}
	for name, raw := range l.Raw {
		p, ok := fields[name]
		switch {
		case !ok:
			return fmt.Errorf("raw: no string field %q", name)
		case utf8.Valid(raw):
			return fmt.Errorf("raw: field %q is valid UTF-8 and belongs in the field itself", name)
		case *p != jsonLossy(raw):
			return fmt.Errorf("raw: field %q does not match its raw bytes", name)
		}
		*p = string(raw)
	}
	return nil
}

// jsonLossy is what encoding/json writes for a string that is not valid
// UTF-8: each byte that does not start a valid sequence becomes U+FFFD.
func jsonLossy(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			sb.WriteRune(utf8.RuneError)
		} else {
			sb.Write(b[:n])
		}
		b = b[n:]
	}
	return sb.String()
}

// stringFields yields every string in ev by JSON name: the string fields,
// found by reflection so a new one is covered without a change here, and
// each group as "groups.N".
func stringFields(ev *Event) func(yield func(string, *string) bool) {
	return func(yield func(string, *string) bool) {
		v := reflect.ValueOf(ev).Elem()
		t := v.Type()
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			f := v.Field(i)
			switch {
			case f.Kind() == reflect.String:
				if !yield(name, f.Addr().Interface().(*string)) {
					return
				}
			case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
				for j := range f.Len() {
					if !yield(name+"."+strconv.Itoa(j), f.Index(j).Addr().Interface().(*string)) {
						return
					}
				}
			}
		}
	}
}

// MaxExportLine bounds one line read by VerifyLines. Requests are bounded
// by the proxy long before this.
const MaxExportLine = 16 << 20

// VerifyLines re-verifies an audit export (ExportLine JSON, one per line,
// in id order) offline. The first line's id and prev_hash are taken as the
// chain's start, because an export may begin anywhere (--since, or a
// pruned log); from there every line must follow the one before it and
// match its own hash, exactly as ChainVerifier checks a store. Blank lines
// are skipped.
//
// It returns how many records verified. If the chain is broken, firstBad
// is the id of the first bad record and err is an *ChainError
// (errors.Is(err, ErrChainBroken)). A line that is not an ExportLine (not
// JSON, unknown fields, bad hex) is reported the same way, as the record
// the verifier expected next, since an edit is the likely reason. Any
// other failure (reading r, an overlong line) has firstBad 0.
//
// What it cannot see: lines removed from the end, or from the start before
// the first line, of the export. Compare the first prev_hash and the last
// hash with values kept elsewhere (an earlier export, a shipped chain head)
// to close that gap.
func VerifyLines(r io.Reader) (checked, firstBad int64, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxExportLine)
	var v ChainVerifier
	broken := func(ce *ChainError) (int64, int64, error) {
		// Record ids start at 1; a line claiming id 0 (or less) is named
		// as the first record, since firstBad 0 means "none".
		return v.Checked(), max(ce.ID, 1), fmt.Errorf("audit: verify lines: %w", ce)
	}
	for lineNo := 1; sc.Scan(); lineNo++ {
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		var l ExportLine
		prev, hash, perr := parseLine(raw, &l)
		if perr != nil {
			id := v.next
			if !v.started {
				id = max(l.ID, 1) // the first line: its own id, if it got that far
			}
			return broken(&ChainError{ID: id, Reason: fmt.Sprintf("line %d: %v", lineNo, perr)})
		}
		if !v.started {
			v.Start(l.ID, prev)
		}
		if err := v.NextVersion(l.HashVersion, &l.Event, prev, hash); err != nil {
			var ce *ChainError
			if errors.As(err, &ce) {
				return broken(ce)
			}
			return v.Checked(), 0, fmt.Errorf("audit: verify lines: %w", err)
		}
	}
	if err := sc.Err(); err != nil {
		return v.Checked(), 0, fmt.Errorf("audit: verify lines: %w", err)
	}
	return v.Checked(), 0, nil
}

// parseLine decodes one export line strictly. The line must be exactly
// what MarshalLine writes for the record it decodes to: encoding/json
// accepts duplicate keys (the last wins) and matches keys without regard
// to case, so a looser reader could show one value while the hash is
// checked against another.
func parseLine(raw []byte, l *ExportLine) (prev, hash []byte, err error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(l); err != nil {
		return nil, nil, fmt.Errorf("not an export line: %w", err)
	}
	canon, err := l.MarshalLine()
	if err != nil {
		return nil, nil, err
	}
	if !bytes.Equal(bytes.TrimSpace(canon), raw) {
		return nil, nil, errors.New("not in the form warden writes (reformatted, duplicate or extra keys)")
	}
	if prev, err = hex.DecodeString(l.PrevHash); err != nil {
		return nil, nil, fmt.Errorf("prev_hash: %w", err)
	}
	if hash, err = hex.DecodeString(l.Hash); err != nil {
		return nil, nil, fmt.Errorf("hash: %w", err)
	}
	if err := l.restore(); err != nil {
		return nil, nil, err
	}
	return prev, hash, nil
}
