package kube

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestWatchReaderAPIServerStreams(t *testing.T) {
	for _, tt := range []struct {
		file   string
		events int
	}{
		{"watch.jsonl", 2},        // ?watch=1
		{"watch-table.jsonl", 2},  // kubectl get secret x -w (Table events)
		{"watch-legacy.jsonl", 5}, // /api/v1/watch/... (ADDED, MODIFIED, DELETED)
		{"watch-error.jsonl", 1},  // an ERROR event carrying a Status
	} {
		t.Run(tt.file, func(t *testing.T) {
			in := readFixture(t, tt.file)
			// One byte at a time: framing must not depend on read sizes.
			r := testMasker().NewWatchReader(iotestOneByte{bytes.NewReader(in)}, 1<<20)
			out, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			assertNoClear(t, tt.file, out)
			sc := bufio.NewScanner(bytes.NewReader(out))
			sc.Buffer(nil, 1<<20)
			n := 0
			for sc.Scan() {
				var ev struct {
					Type   string
					Object json.RawMessage
				}
				if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Type == "" {
					t.Fatalf("line %d is not a WatchEvent: %v %s", n, err, sc.Bytes())
				}
				checkFullyMasked(t, sc.Bytes())
				n++
			}
			if n != tt.events {
				t.Errorf("%d events, want %d", n, tt.events)
			}
		})
	}
}

type iotestOneByte struct{ r io.Reader }

func (o iotestOneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

// A Read must return an event as soon as it is complete, without waiting for
// the next one: the API server keeps a watch open for minutes.
func TestWatchReaderPrompt(t *testing.T) {
	pr, pw := io.Pipe()
	r := testMasker().NewWatchReader(pr, 1<<16)
	defer r.Close()
	lines := make(chan string)
	errc := make(chan error, 1)
	go func() {
		br := bufio.NewReader(r)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				errc <- err
				close(lines)
				return
			}
			lines <- l
		}
	}()
	ev := `{"type":"ADDED","object":{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s"},"data":{"k":"aHVudGVyMi1jbGVhci12YWx1ZQ=="}}}` + "\n"
	for i := 0; i < 3; i++ {
		if _, err := io.WriteString(pw, ev); err != nil {
			t.Fatal(err)
		}
		select {
		case l := <-lines:
			assertNoClear(t, "event", []byte(l))
			if !strings.Contains(l, `"name":"s"`) {
				t.Fatalf("event %d: %s", i, l)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d not delivered while the stream stays open", i)
		}
	}
	// Half an event, then the stream breaks: nothing of it comes out.
	io.WriteString(pw, `{"type":"ADDED","object":{"kind":"Secret","data":{"k":"aHVudGVy`)
	pw.Close()
	if l, ok := <-lines; ok {
		t.Fatalf("partial event delivered: %q", l)
	}
	if err := <-errc; !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want ErrUnexpectedEOF", err)
	}
}

func TestWatchReaderErrors(t *testing.T) {
	good := `{"type":"ADDED","object":{"kind":"ConfigMap"}}`
	for _, tt := range []struct {
		name, in string
		max      int
		want     error
	}{
		{"too large", good + "\n" + `{"type":"ADDED","object":{"kind":"Secret","data":{"k":"` + strings.Repeat("QUFB", 100) + `"}}}`, 100, ErrEventTooLarge},
		{"too large, unterminated", good + `{"type":"` + strings.Repeat("x", 500), 100, ErrEventTooLarge},
		{"not an object", good + "\n[1]", 1 << 10, ErrMalformed},
		{"garbage between events", good + "x" + good, 1 << 10, ErrMalformed},
		{"bad Secret", good + `{"type":"ADDED","object":{"kind":"Secret","data":{"k":"!!"}}}`, 1 << 10, ErrMalformed},
		{"unbalanced", good + `{"a":]}`, 1 << 10, ErrMalformed},
		{"truncated", good + "\n{", 1 << 10, io.ErrUnexpectedEOF},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := io.ReadAll(testMasker().NewWatchReader(strings.NewReader(tt.in), tt.max))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			// The good event before the bad one is delivered whole, nothing after.
			if string(out) != good+"\n" {
				t.Fatalf("out = %q", out)
			}
		})
	}
	// Clean end, whitespace framing of every kind.
	out, err := io.ReadAll(testMasker().NewWatchReader(strings.NewReader(" \r\n\t"+good+good+"\n\n "+good), 1<<10))
	if err != nil || string(out) != strings.Repeat(good+"\n", 3) {
		t.Fatalf("out = %q, err = %v", out, err)
	}
}

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestWatchReaderClose(t *testing.T) {
	c := &closeRecorder{Reader: strings.NewReader("")}
	if err := testMasker().NewWatchReader(c, 10).Close(); err != nil || !c.closed {
		t.Fatal("Close did not close the upstream body")
	}
}

func FuzzWatchReader(f *testing.F) {
	for _, name := range []string{"watch.jsonl", "watch-table.jsonl", "watch-legacy.jsonl", "watch-error.jsonl"} {
		b, err := readFixtureFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint16(4096), uint8(7))
	}
	f.Add([]byte(`{"type":"ADDED","object":{"kind":"SecretList","items":[{"data":{"a":"aGk="}}]}} {"a":"\"}\\"}`), uint16(100), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, max uint16, chunk uint8) {
		r := testMasker().NewWatchReader(&chunkReader{in, int(chunk%16) + 1}, int(max)+1)
		out, err := io.ReadAll(r)
		if len(out) > 0 && out[len(out)-1] != '\n' {
			t.Fatalf("output does not end with a whole event: %q", out)
		}
		// Every delivered event is valid JSON and fully masked.
		for _, line := range bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n")) {
			if len(out) == 0 {
				break
			}
			if !json.Valid(line) {
				t.Fatalf("event not JSON: %q", line)
			}
			if len(line) > 0 && line[0] != '{' {
				t.Fatalf("event not an object: %q", line)
			}
			checkFullyMasked(t, line)
		}
		_ = err
	})
}

type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := min(c.n, len(p), len(c.b))
	copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}
