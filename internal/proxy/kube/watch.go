package kube

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ErrEventTooLarge is returned by a watch reader when one event exceeds its
// maximum size.
var ErrEventTooLarge = errors.New("kube: watch event too large")

// readChunk is how much a watch reader asks of the upstream stream at once.
const readChunk = 32 << 10

// NewWatchReader wraps a watch response stream (JSON WatchEvent objects,
// which the API server writes one per line; any JSON whitespace between them
// is accepted) and returns a reader of the same events with every Secret
// masked, each followed by a newline.
//
// It holds at most one event (plus one read chunk) at a time: a Read returns
// as soon as one masked event is ready, so a caller that flushes after every
// Read streams event by event. An event longer than maxEvent bytes, a value
// that is not a JSON object, a malformed event or a stream cut inside an
// event ends the stream with an error (wrapping ErrEventTooLarge,
// ErrMalformed or io.ErrUnexpectedEOF); the events before it have been
// delivered whole and nothing of the bad one is. The caller should then cut
// the connection rather than end the response cleanly. Close closes r if it
// is an io.Closer.
func (m *SecretMasker) NewWatchReader(r io.Reader, maxEvent int) io.ReadCloser {
	if maxEvent <= 0 {
		maxEvent = 1
	}
	return &watchReader{m: m, r: r, max: maxEvent}
}

type watchReader struct {
	m   *SecretMasker
	r   io.Reader
	max int

	buf  []byte // unread upstream bytes; buf[:scan] belong to the current event
	out  []byte // masked bytes not yet returned
	err  error  // sticky, returned once out is drained
	rerr error  // upstream error, acted on once buf is framed

	// Framing state of the current event, valid for buf[:scan].
	scan    int
	started bool
	depth   int
	inStr   bool
	esc     bool
}

func (w *watchReader) Read(p []byte) (int, error) {
	for {
		if len(w.out) > 0 {
			n := copy(p, w.out)
			w.out = w.out[n:]
			return n, nil
		}
		if w.err != nil {
			return 0, w.err
		}
		if end, ok := w.frame(); ok {
			w.emit(end)
			continue
		}
		if w.err != nil {
			continue
		}
		if w.scan > w.max {
			w.err = fmt.Errorf("%w: more than %d bytes", ErrEventTooLarge, w.max)
			continue
		}
		if w.rerr != nil {
			switch {
			case !errors.Is(w.rerr, io.EOF):
				w.err = w.rerr
			case w.started:
				w.err = fmt.Errorf("kube: watch stream ended inside an event: %w", io.ErrUnexpectedEOF)
			default:
				w.err = io.EOF
			}
			continue
		}
		w.fill()
	}
}

// frame scans buf for the end of the current event. It returns the end offset
// when buf[:end] is one whole top-level object.
func (w *watchReader) frame() (int, bool) {
	for ; w.scan < len(w.buf); w.scan++ {
		c := w.buf[w.scan]
		if !w.started {
			switch c {
			case ' ', '\t', '\r', '\n':
				// Whitespace between events: drop it.
				w.buf = w.buf[1:]
				w.scan--
				continue
			case '{':
				w.started = true
				w.depth = 1
				continue
			default:
				w.err = fmt.Errorf("%w: watch stream has %q where an event should start", ErrMalformed, c)
				return 0, false
			}
		}
		switch {
		case w.inStr && w.esc:
			w.esc = false
		case w.inStr && c == '\\':
			w.esc = true
		case w.inStr && c == '"':
			w.inStr = false
		case w.inStr:
		case c == '"':
			w.inStr = true
		case c == '{' || c == '[':
			w.depth++
		case c == '}' || c == ']':
			w.depth--
			if w.depth == 0 {
				end := w.scan + 1
				if end > w.max {
					w.err = fmt.Errorf("%w: more than %d bytes", ErrEventTooLarge, w.max)
					return 0, false
				}
				return end, true
			}
		}
	}
	return 0, false
}

// emit masks buf[:end], queues it for reading and resets the framer.
func (w *watchReader) emit(end int) {
	masked, _, err := w.m.MaskJSON(w.buf[:end])
	if err != nil {
		w.err = fmt.Errorf("kube: watch event: %w", err)
		return
	}
	// masked may alias buf (nothing to mask); copy before buf is reused.
	// An event goes out on one line, as the API server writes them: one
	// that arrived spread over lines is compacted.
	if bytes.ContainsAny(masked, "\n\r") {
		var c bytes.Buffer
		if err := json.Compact(&c, masked); err != nil {
			w.err = fmt.Errorf("%w: watch event: %v", ErrMalformed, err)
			return
		}
		masked = c.Bytes()
	}
	w.out = append(append(w.out[:0], masked...), '\n')
	rest := copy(w.buf, w.buf[end:])
	w.buf = w.buf[:rest]
	w.scan, w.started, w.depth, w.inStr, w.esc = 0, false, 0, false, false
}

// fill reads once from upstream. An upstream error is kept until the bytes
// read with it have been framed.
func (w *watchReader) fill() {
	if cap(w.buf)-len(w.buf) < readChunk/2 {
		nb := make([]byte, len(w.buf), max(2*cap(w.buf), len(w.buf)+readChunk))
		copy(nb, w.buf)
		w.buf = nb
	}
	n, err := w.r.Read(w.buf[len(w.buf):cap(w.buf)])
	w.buf = w.buf[:len(w.buf)+n]
	if err != nil {
		w.rerr = err
	}
}

func (w *watchReader) Close() error {
	if c, ok := w.r.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
