package postgres

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// msgReader frames PostgreSQL protocol messages (a type byte, then a
// 4-byte length that includes itself; see "55.7 Message Formats" in the
// PostgreSQL docs) from a buffered reader. Decoding of the few messages
// warden must understand is left to pgproto3; everything else is relayed
// as the raw bytes it arrived as.
type msgReader struct {
	r   *bufio.Reader
	buf []byte // reused; a returned body is valid until the next call
	max int    // largest body accepted; 0 means no limit
}

// tooLargeError reports a message over the configured limit.
type tooLargeError struct {
	typ       byte
	size, max int
}

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("message %q of %d bytes exceeds the limit of %d bytes", e.typ, e.size, e.max)
}

// header reads the next message header: its type and body length.
func (m *msgReader) header() (typ byte, n int, err error) {
	h, err := m.r.Peek(5)
	if err != nil {
		if err == io.EOF && len(h) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, err
	}
	typ = h[0]
	l := int(int32(binary.BigEndian.Uint32(h[1:5])))
	if l < 4 {
		return 0, 0, fmt.Errorf("invalid message length %d for message %q", l, typ)
	}
	m.r.Discard(5)
	return typ, l - 4, nil
}

// body reads a message body of n bytes into the reusable buffer.
func (m *msgReader) body(typ byte, n int) ([]byte, error) {
	if m.max > 0 && n > m.max {
		return nil, &tooLargeError{typ: typ, size: n, max: m.max}
	}
	if cap(m.buf) < n {
		m.buf = make([]byte, n, max(n, 2*cap(m.buf)))
	}
	b := m.buf[:n]
	if _, err := io.ReadFull(m.r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	// Give back large buffers so one big message does not pin memory for
	// the life of the connection.
	if cap(m.buf) > 1<<20 {
		m.buf = nil
	}
	return b, nil
}

// next reads one whole message.
func (m *msgReader) next() (typ byte, body []byte, err error) {
	typ, n, err := m.header()
	if err != nil {
		return 0, nil, err
	}
	body, err = m.body(typ, n)
	return typ, body, err
}

// relayBody copies an n-byte body straight from r to w without holding
// it whole: DataRow messages can be large, and warden does not need to
// look inside the ones it relays.
func relayBody(w *bufio.Writer, r *bufio.Reader, n int) error {
	if n <= r.Buffered() {
		b, _ := r.Peek(n)
		w.Write(b)
		_, err := r.Discard(n)
		return err
	}
	_, err := io.CopyN(w, r, int64(n))
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// writeRaw writes a message from its type and body.
func writeRaw(w *bufio.Writer, typ byte, body []byte) {
	var h [5]byte
	h[0] = typ
	binary.BigEndian.PutUint32(h[1:], uint32(len(body)+4))
	w.Write(h[:])
	w.Write(body)
}

// writeHeader writes a message header for a body of n bytes.
func writeHeader(w *bufio.Writer, typ byte, n int) {
	var h [5]byte
	h[0] = typ
	binary.BigEndian.PutUint32(h[1:], uint32(n+4))
	w.Write(h[:])
}

// encoder is any pgproto3 message.
type encoder interface {
	Encode(dst []byte) ([]byte, error)
}

// writeMsg encodes a pgproto3 message to w.
func writeMsg(w *bufio.Writer, scratch *[]byte, m encoder) error {
	b, err := m.Encode((*scratch)[:0])
	if err != nil {
		return err
	}
	*scratch = b
	_, err = w.Write(b)
	return err
}
