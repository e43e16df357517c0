package postgres

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/metrics"
	"github.com/warden-gateway/warden/internal/policy"
	"github.com/warden-gateway/warden/internal/sqlfacts"
)

// denyMarker starts the text of the placeholder statement warden sends
// upstream in place of a refused one. See session.refuse.
const denyMarker = "warden_denied_"

// session is one client connection and its upstream connection.
//
// Two goroutines move bytes: the client loop (run's caller) reads client
// messages, decides Query/Parse/FunctionCall and writes upstream; the
// upstream loop relays backend messages to the client, rewriting the
// errors that stand for refusals. Only the client loop touches prepared
// and the upstream writer; writes to the client are under cwMu.
type session struct {
	srv       *Server
	id        string
	pid       uint32
	secret    []byte
	target    *Target
	principal *identity.Principal
	subject   *policy.Subject
	evBase    audit.Event

	rawClient net.Conn
	client    net.Conn
	upstream  net.Conn
	upPID     uint32
	upKey     []byte
	upAddr    string

	cr msgReader
	ur msgReader
	uw *bufio.Writer

	cwMu sync.Mutex
	cw   *bufio.Writer

	// prepared maps statement names (protocol-level and SQL PREPARE share
	// one namespace in PostgreSQL) to the facts they were allowed with.
	prepared map[string]*sqlfacts.Statement
	// portals maps portal names to the statement bound into them, so an
	// Execute is audited as the statement it runs.
	portals map[string]portal
	scratch []byte
	seq     int64 // statements decided in this session

	// ran counts the messages forwarded that can run code upstream (Bind,
	// Execute, Query); cursorGen counts the allowed statements that may
	// open or close portals by name other than by Bind and Close (DECLARE,
	// CLOSE, DISCARD, CALL, DO, functions). A portal keeps both from its
	// Bind, so an Execute can tell whether the portal it names is still
	// the one warden bound (see execute).
	ran, cursorGen uint64

	mt *metrics.Target

	// me masks results; nil when no mask rule applies to this session.
	me *maskEngine
	// When masking, every Execute is preceded by warden's own Describe of
	// the portal, so the plan for the rows that follow is always that
	// portal's, with the result formats the client bound; unless the
	// client has just described a mask-free portal itself, and the answer
	// to that serves (see execute). descs are the Describe messages (the
	// client's and warden's) whose RowDescription or NoData is still to
	// come, in order.
	descMu sync.Mutex
	descs  []describeExpect

	// flight is the queue of allowed statements forwarded upstream and
	// not yet completed, in order; the upstream loop pops them as their
	// completions arrive and records what they did.
	flightMu sync.Mutex
	flight   []inflight

	// Audit records submitted but not yet known durable. The upstream
	// loop waits for all of them before it relays any message to the
	// client: a response can only belong to a statement forwarded after
	// its record was submitted, so no result reaches the client before
	// its record is durable.
	pendMu  sync.Mutex
	pending []audit.Pending
	pendN   atomic.Int32

	// deferredN counts flight entries with a deferred decision record;
	// foldTimer (armed while there are any, under flightMu) submits them
	// if their statements run longer than foldDelay, so a slow statement
	// is on record while it runs.
	deferredN atomic.Int32

	// The last statement text audited, its bounded form and digest
	// (client loop only).
	lastText, lastBound, lastHash string
	foldTimer                     *time.Timer
	foldArmed                     bool

	// syncs counts the messages sent upstream that each end in exactly
	// one ReadyForQuery (Sync, Query, FunctionCall's stand-in).
	syncs uint64

	denyMu  sync.Mutex
	nonce   uint64
	denials map[uint64]denial // by nonce
	rfqSeen uint64

	// ctx ends when the session does: it bounds waits for reviews.
	ctx    context.Context
	cancel context.CancelFunc
	// held is the id of the review a statement is waiting on, if any.
	held atomic.Pointer[string]
	bg   sync.WaitGroup // background work owned by the session (review results)

	killOnce sync.Once
	killed   atomic.Bool // set once kill has run: the session is ending
	endErr   error

	endMu     sync.Mutex
	endReason string // why warden ended the session, if it did
}

// portal is a bound statement.
type portal struct {
	st         *sqlfacts.Statement
	paramsHash string
	// The session's ran and cursorGen when it was bound; ran moves on
	// with each of its own Executes while nothing else runs.
	ran, cursorGen uint64
	// layout is the answer to the client's latest Describe of this
	// portal, if its statement was mask-free then (see execute).
	layout *portalLayout
}

// portalLayout is how the rows of a mask-free portal are relayed, from
// the answer to the client's own Describe of it: the upstream loop sets
// plan when that answer arrives (relayPlan if the layout is clear), and
// uses it for the rows of the Executes that skipped warden's Describe.
// Only the upstream loop touches plan.
type portalLayout struct {
	st   *sqlfacts.Statement
	plan *rowPlan // nil until a RowDescription answers
}

// inflight is an allowed statement awaiting its completion upstream.
type inflight struct {
	st       *sqlfacts.Statement // what runs, for masking computed columns
	layout   *portalLayout       // non-nil: no Describe of warden's; the client's plans its rows
	seq      int64               // 0: not recorded (e.g. an Execute of an unknown portal)
	reviewID string              // the approval it runs under, if any
	text     string
	kind     string
	start    time.Time
	lastRFQ  uint64 // the ReadyForQuery that ends its batch
	// deferred is the decision record of a read-only statement, not yet
	// submitted: folded with the statement's result into one record if
	// the whole answer is in hand before any of it must reach the client
	// (see session.ensureDurable).
	deferred *audit.Event
}

// describeExpect is a Describe awaiting its RowDescription or NoData.
type describeExpect struct {
	injected bool                // warden's own: its answer is not relayed, and plans the rows that follow
	st       *sqlfacts.Statement // for an injected one: what the Execute runs (nil: unknown)
	layout   *portalLayout       // for the client's of a mask-free portal: where its answer goes
	lastRFQ  uint64
}

// denial is a refusal waiting for its placeholder's error upstream.
type denial struct {
	resp    *pgproto3.ErrorResponse
	lastRFQ uint64 // the ReadyForQuery that ends its batch; stale after
}

// kill closes both connections, ending both loops.
func (ss *session) kill() {
	ss.killOnce.Do(func() {
		ss.killed.Store(true)
		if ss.cancel != nil {
			ss.cancel()
		}
		ss.client.Close()
		ss.upstream.Close()
	})
}

// run relays until either side closes.
func (ss *session) run() {
	var wg sync.WaitGroup
	wg.Add(1)
	up := &upstreamLoop{ss: ss, counts: make(maskCounts)}
	go func() {
		defer wg.Done()
		up.run()
	}()
	err := ss.clientLoop()
	ss.kill()
	wg.Wait()
	// Statements forwarded but never answered are on record all the same.
	ss.unfold()
	ss.bg.Wait()
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = up.err
	}
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		ss.endErr = err
	}
}

// clientLoop reads and decides client messages.
func (ss *session) clientLoop() error {
	for {
		typ, body, err := ss.cr.next()
		if err != nil {
			var tl *tooLargeError
			if errors.As(err, &tl) {
				ss.fatal("54000", "warden: "+tl.Error())
			}
			return err
		}
		switch typ {
		case 'Q':
			q, ok := cstring(body)
			if !ok {
				ss.fatal("08P01", "warden: malformed Query message")
				return errors.New("malformed Query")
			}
			ss.syncs++
			ss.ran++
			if err := ss.query(q, body); err != nil {
				return err
			}
		case 'P':
			var p pgproto3.Parse
			if err := p.Decode(body); err != nil {
				ss.fatal("08P01", "warden: malformed Parse message")
				return err
			}
			if err := ss.parse(&p, body); err != nil {
				return err
			}
		case 'F':
			// FunctionCall ("55.2.6 Function Call") calls a function by
			// OID with no SQL to inspect: refused always.
			ss.syncs++
			ss.refuse(typ, "", nil, &pgproto3.ErrorResponse{Code: "42501",
				Message: "warden: permission denied: the FunctionCall protocol message is not allowed (rule: builtin)"})
			ss.seq++
			ss.mt.Decided(false, 0)
			ss.audit(record{seq: ss.seq, text: "<FunctionCall>", kind: "functioncall"}, policy.Decision{Effect: policy.Deny, Rule: policy.RuleBuiltin, Reason: "FunctionCall message"}, false)
		case 'S':
			ss.syncs++
			writeRaw(ss.uw, typ, body)
		case 'C':
			var c pgproto3.Close
			if err := c.Decode(body); err != nil {
				ss.fatal("08P01", "warden: malformed Close message")
				return err
			}
			switch c.ObjectType {
			case 'S':
				delete(ss.prepared, c.Name)
			case 'P':
				delete(ss.portals, c.Name)
			}
			writeRaw(ss.uw, typ, body)
		case 'B':
			portal, stmt, ok := twoCStrings(body)
			if !ok {
				ss.fatal("08P01", "warden: malformed Bind message")
				return errors.New("malformed Bind")
			}
			ss.ran++ // binding may run code: type input, domain checks, planning
			if st := ss.prepared[stmt]; st != nil {
				if _, ok := ss.portals[portal]; !ok && len(ss.portals) >= maxNamed {
					clear(ss.portals) // named portals die with their transaction anyway
				}
				p := newPortal(st, body[len(portal)+len(stmt)+2:])
				p.ran, p.cursorGen = ss.ran, ss.cursorGen
				ss.portals[portal] = p
			} else {
				delete(ss.portals, portal)
			}
			writeRaw(ss.uw, typ, body)
		case 'E':
			if err := ss.execute(body); err != nil {
				return err
			}
		case 'X':
			// Terminate: pass it on so the backend ends cleanly.
			writeRaw(ss.uw, typ, body)
			ss.uw.Flush()
			return nil
		case 'D':
			if ss.me != nil && len(body) >= 2 {
				// The client's own: its answer is relayed, and plans
				// rows only for a mask-free portal.
				ss.pushDescribe(describeExpect{layout: ss.describePortal(body), lastRFQ: ss.syncs + 1})
			}
			writeRaw(ss.uw, typ, body)
		case 'H', 'd', 'c', 'f':
			writeRaw(ss.uw, typ, body)
		default:
			ss.fatal("08P01", fmt.Sprintf("warden: unexpected message type %q", typ))
			return fmt.Errorf("unexpected message type %q", typ)
		}
		if ss.cr.r.Buffered() == 0 {
			if err := ss.uw.Flush(); err != nil {
				return err
			}
		}
	}
}

// execute handles an Execute: the statement bound into the portal was
// decided at Parse; this decides it again (held for review if policy says
// so), records that it ran, and forwards it.
//
// When masking, warden injects its own Describe of the portal before the
// Execute, so the RowDescription that heads the rows is always the
// server's layout of that portal. It need not when the client has
// described the portal itself since its Bind and its statement was
// mask-free then: the answer to the client's Describe is the same
// layout, and the upstream loop plans the rows from it (see
// describePortal).
//
// Either way warden must know which portal runs: a name it tracks may
// since have been reused for a SQL cursor (DECLARE after the portal died
// with its transaction, or after CLOSE). So a portal is trusted as
// warden's own, and the client's Describe of it with it, only if nothing
// has run since its Bind but its own Executes (ran); and its statement is
// trusted for masking computed columns only if nothing that may open or
// close portals by name has run since (cursorGen). Otherwise what it runs
// is unknown, as for a cursor.
func (ss *session) execute(body []byte) error {
	name, ok := firstCString(body)
	if !ok {
		ss.fatal("08P01", "warden: malformed Execute message")
		return errors.New("malformed Execute")
	}
	ss.ran++
	p, tracked := ss.portals[name]
	if !tracked {
		// Unknown to warden: PostgreSQL will refuse it, or skip it after
		// an earlier error, or it is a SQL cursor (DECLARE makes a portal
		// by its name). Keep the queue aligned, and mask what it returns
		// as unknown.
		ss.cursorGen++
		if ss.me != nil {
			ss.injectDescribe(name, nil)
		}
		ss.push(inflight{lastRFQ: ss.syncs + 1})
		writeRaw(ss.uw, 'E', body)
		return nil
	}
	st := p.st
	start := time.Now()
	d := ss.subject.DecideStatement(ss.target.Name, st)
	ss.mt.Decided(d.Effect == policy.Allow, time.Since(start))
	ss.seq++
	rec := record{seq: ss.seq, text: st.Text, kind: st.Kind, paramsHash: p.paramsHash}
	var approvedBy string
	switch d.Effect {
	case policy.Deny:
		// Policy is fixed for a session today; should it ever
		// change under one, the new answer wins.
		ss.audit(rec, d, false)
		ss.refuse('P', "", nil, denyResponse("42501", d))
	case policy.Review:
		r, refusal := ss.hold(rec, st.Kind, d)
		if refusal != nil {
			ss.refuse('P', "", nil, refusal)
			break
		}
		approvedBy = r.ID
		d.Effect, d.Reason = policy.Allow, fmt.Sprintf("approved in review %s: %s", r.ID, d.Reason)
	}
	if d.Effect != policy.Allow {
		return nil
	}
	// The decision was made at Parse; this records that the
	// statement ran, with its parameters' digest.
	var deferred *audit.Event
	if approvedBy == "" && readOnly(st, nil) && ss.canFold() {
		deferred = ss.decisionEvent(rec, d)
	} else if err := ss.audit(rec, d, approvedBy != "" || !readOnly(st, nil)); err != nil {
		// A placeholder Parse fails at this position, so the
		// Execute and the rest of the batch are skipped.
		ss.refuse('P', "", nil, auditUnavailable())
		return nil
	}
	var layout *portalLayout
	if ss.me != nil {
		known := p.cursorGen == ss.cursorGen
		own := known && p.ran == ss.ran-1
		if own {
			layout = p.layout
		}
		if layout != nil {
			ss.me.free.Add(1)
		} else {
			mst := st
			if !known {
				mst = nil
			}
			// Ask the server for this portal's RowDescription (the
			// answer is not relayed), so masking knows the layout and
			// the result formats the client bound.
			ss.injectDescribe(name, mst)
		}
		if own {
			p.ran = ss.ran // its own Execute leaves it warden's
			ss.portals[name] = p
		}
	}
	if opensCursors(st) {
		ss.cursorGen++
	}
	ss.push(inflight{st: st, layout: layout, seq: ss.seq, reviewID: approvedBy, text: st.Text, kind: st.Kind, start: start, lastRFQ: ss.syncs + 1, deferred: deferred})
	writeRaw(ss.uw, 'E', body)
	return nil
}

// describePortal handles the client's Describe (body) while masking: for
// a portal warden bound, with nothing run since, whose statement is
// mask-free, it returns where the upstream loop is to put the plan its
// answer makes, and remembers it with the portal for the Executes that
// follow; otherwise nil.
func (ss *session) describePortal(body []byte) *portalLayout {
	if body[0] != 'P' {
		return nil // a statement's: its result formats are not bound yet
	}
	name, ok := firstCString(body[1:])
	if !ok {
		return nil
	}
	p, tracked := ss.portals[name]
	if !tracked {
		return nil
	}
	p.layout = nil
	if p.ran == ss.ran && p.cursorGen == ss.cursorGen && ss.me.maskFree(ss.ctx, p.st) {
		p.layout = &portalLayout{st: p.st}
	}
	ss.portals[name] = p
	return p.layout
}

// injectDescribe sends warden's own Describe of portal name upstream; its
// answer plans the rows of the Execute that follows, for statement st
// (nil: unknown).
func (ss *session) injectDescribe(name string, st *sqlfacts.Statement) {
	b := append(append(append(ss.scratch[:0], 'P'), name...), 0)
	writeRaw(ss.uw, 'D', b)
	ss.scratch = b[:0]
	ss.pushDescribe(describeExpect{injected: true, st: st, lastRFQ: ss.syncs + 1})
	ss.me.describes.Add(1)
}

// opensCursors reports whether st may open or close portals by name other
// than by Bind and Close: DECLARE, CLOSE, DISCARD, and whatever runs code
// warden cannot see (CALL, DO, a function outside the safe list, EXECUTE
// of a prepared statement). Unknown statements may.
func opensCursors(st *sqlfacts.Statement) bool {
	if st == nil {
		return true
	}
	switch st.Kind {
	case "declare cursor", "close", "discard", "call", "execute":
		return true
	}
	if st.ExecuteName != "" {
		return true
	}
	for _, a := range st.Accesses {
		if a.Action == sqlfacts.Execute || a.Action == sqlfacts.Command {
			return true
		}
	}
	return false
}

// cstring returns the NUL-terminated string that is the whole body.
func cstring(b []byte) (string, bool) {
	if len(b) == 0 || b[len(b)-1] != 0 {
		return "", false
	}
	return string(b[:len(b)-1]), true
}

// decision decides a query string: the whole string is refused if any
// statement in it is. It returns the facts (nil when unparseable).
func (ss *session) decide(q string, extended bool) (*sqlfacts.Facts, policy.Decision, string) {
	if len(q) > ss.srv.cfg.MaxQueryBytes {
		return nil, policy.Decision{Effect: policy.Deny, Rule: "builtin",
			Reason: fmt.Sprintf("statement of %d bytes exceeds the limit of %d bytes", len(q), ss.srv.cfg.MaxQueryBytes)}, "54000"
	}
	if !utf8.ValidString(q) {
		return nil, policy.Decision{Effect: policy.Deny, Rule: "builtin", Reason: "statement is not valid UTF-8"}, "22021"
	}
	facts, err := ss.srv.facts.Extract(q, sqlfacts.Options{Schema: ss.target.Schema})
	if errors.Is(err, sqlfacts.ErrEmpty) {
		// Only comments or whitespace (pgx pings with "-- ping"):
		// PostgreSQL answers EmptyQueryResponse and runs nothing.
		return &sqlfacts.Facts{}, policy.Decision{Effect: policy.Allow, Rule: policy.RuleBuiltin, Reason: "empty query"}, ""
	}
	if err != nil {
		return nil, policy.Decision{Effect: policy.Deny, Rule: "builtin",
			Reason: "warden could not parse the statement: " + err.Error()}, "42601"
	}
	// The statements' own accesses first, exactly as `warden policy
	// test` and `explain` decide them (EXECUTE's parameters are
	// expressions evaluated now; CREATE TABLE ... AS EXECUTE creates a
	// table). Then what EXECUTE runs.
	d := ss.subject.DecideFacts(ss.target.Name, facts)
	if d.Effect == policy.Deny {
		return facts, d, "42501"
	}
	var pending map[string]*sqlfacts.Statement
	for i := range facts.Statements {
		st := &facts.Statements[i]
		if ss.me != nil {
			if rule, why := ss.me.check(ss.ctx, st); why != "" {
				return facts, policy.Decision{Effect: policy.Deny, Rule: rule, Reason: why, Summary: why}, "42501"
			}
		}
		if st.ExecuteName != "" {
			ps, ok := pending[st.ExecuteName]
			if !ok {
				ps, ok = ss.prepared[st.ExecuteName]
			}
			if !ok {
				return facts, policy.Decision{Effect: policy.Deny, Rule: policy.RuleBuiltin,
					Reason:  fmt.Sprintf("prepared statement %q is not known to warden", st.ExecuteName),
					Summary: fmt.Sprintf("prepared statement %q is not known to warden", st.ExecuteName)}, "42501"
			}
			switch di := ss.subject.DecideStatement(ss.target.Name, ps); di.Effect {
			case policy.Deny:
				return facts, di, "42501"
			case policy.Review:
				if d.Effect == policy.Allow {
					d = di // deny > review > allow
				}
			}
		}
		if facts.Statements[i].PrepareName != "" {
			name := facts.Statements[i].PrepareName
			if _, dup := ss.prepared[name]; dup {
				return facts, policy.Decision{Effect: policy.Deny, Rule: "builtin",
					Reason: fmt.Sprintf("prepared statement %q already exists", name)}, "42P05"
			}
			if pending == nil {
				pending = make(map[string]*sqlfacts.Statement)
			}
			pending[name] = st
		}
	}
	return facts, d, ""
}

// track applies the session effects of an allowed query.
func (ss *session) track(facts *sqlfacts.Facts) {
	for i := range facts.Statements {
		st := &facts.Statements[i]
		switch {
		case st.PrepareName != "":
			ss.prepared[st.PrepareName] = st
		case st.DeallocateAll:
			clear(ss.prepared)
		case st.DeallocateName != "":
			delete(ss.prepared, st.DeallocateName)
		}
	}
}

func kindOf(f *sqlfacts.Facts) string {
	if f == nil || len(f.Statements) == 0 {
		return ""
	}
	if len(f.Statements) == 1 {
		return f.Statements[0].Kind
	}
	var b strings.Builder
	for i, st := range f.Statements {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(st.Kind)
	}
	return b.String()
}

// query handles a simple-protocol Query.
func (ss *session) query(q string, body []byte) error {
	start := time.Now()
	facts, d, code := ss.decide(q, false)
	ss.mt.Decided(d.Effect == policy.Allow, time.Since(start))
	ss.seq++
	rec := record{seq: ss.seq, text: q, kind: kindOf(facts)}
	if facts != nil {
		rec.fingerprint = facts.Fingerprint
	}
	var approvedBy string
	switch d.Effect {
	case policy.Deny:
		ss.audit(rec, d, false)
		ss.refuse('Q', "", nil, denyResponse(code, d))
		return nil
	case policy.Review:
		r, refusal := ss.hold(rec, kindOf(facts), d)
		if refusal != nil {
			ss.refuse('Q', "", nil, refusal)
			return nil
		}
		approvedBy = r.ID
		d.Effect, d.Reason = policy.Allow, fmt.Sprintf("approved in review %s: %s", r.ID, d.Reason)
	}
	var deferred *audit.Event
	if approvedBy == "" && facts != nil && len(facts.Statements) == 1 && ss.factsReadOnly(facts) && ss.canFold() {
		deferred = ss.decisionEvent(rec, d)
	} else if err := ss.audit(rec, d, approvedBy != "" || !ss.factsReadOnly(facts)); err != nil {
		ss.refuse('Q', "", nil, auditUnavailable())
		return nil
	}
	ss.track(facts)
	if facts == nil {
		ss.cursorGen++
	} else {
		for i := range facts.Statements {
			if opensCursors(&facts.Statements[i]) {
				ss.cursorGen++
				break
			}
		}
	}
	if facts == nil || len(facts.Statements) == 0 {
		ss.push(inflight{lastRFQ: ss.syncs}) // EmptyQueryResponse
	} else {
		for i := range facts.Statements {
			st := &facts.Statements[i]
			ss.push(inflight{st: st, seq: ss.seq, reviewID: approvedBy, text: st.Text, kind: st.Kind, start: start, lastRFQ: ss.syncs, deferred: deferred})
			approvedBy = "" // the result of the first statement reports to the review
		}
	}
	writeRaw(ss.uw, 'Q', body)
	return nil
}

// parse handles an extended-protocol Parse: the decision is made here and
// remembered with the statement name ("55.2.3 Extended Query"). A refusal
// is audited here; an allowed statement is audited at each Execute.
func (ss *session) parse(p *pgproto3.Parse, body []byte) error {
	start := time.Now()
	facts, d, code := ss.decide(p.Query, true)
	// A statement held for review is parsed (parsing runs nothing) and
	// held at Execute, when its parameters are known: the approval binds
	// them too.
	if d.Effect == policy.Deny {
		ss.mt.Decided(false, time.Since(start))
		ss.seq++
		ss.audit(record{seq: ss.seq, text: p.Query, kind: kindOf(facts)}, d, false)
		ss.refuse('P', p.Name, nil, denyResponse(code, d))
		return nil
	}
	if p.Name != "" {
		if _, dup := ss.prepared[p.Name]; dup {
			// PostgreSQL refuses too (42P05); let it, so the statement
			// it keeps is the one warden knows.
			writeRaw(ss.uw, 'P', body)
			return nil
		}
		if len(ss.prepared) >= maxNamed {
			ss.refuse('P', p.Name, nil, &pgproto3.ErrorResponse{Code: "54000",
				Message: fmt.Sprintf("warden: more than %d prepared statements in one session", maxNamed)})
			return nil
		}
	}
	ss.track(facts)
	switch {
	case len(facts.Statements) == 1 && facts.Statements[0].ExecuteName != "":
		// Parse("EXECUTE name"): executions are audited as the
		// statement prepared under that name.
		ss.prepared[p.Name] = ss.prepared[facts.Statements[0].ExecuteName]
	case len(facts.Statements) == 1:
		ss.prepared[p.Name] = &facts.Statements[0]
	default:
		delete(ss.prepared, p.Name)
	}
	writeRaw(ss.uw, 'P', body)
	return nil
}

// maxNamed bounds the named statements and portals warden tracks per
// session.
const maxNamed = 10000

// readOnly reports whether st only reads: then its audit record may be
// written while it runs (its result is still held until the record is
// durable). Anything that may change data is recorded durably before it
// is forwarded, so no write ever runs unrecorded.
func readOnly(st *sqlfacts.Statement, prepared map[string]*sqlfacts.Statement) bool {
	if st == nil || st.Refusal != "" {
		return false
	}
	for _, a := range st.Accesses {
		if a.Action != sqlfacts.Select {
			return false
		}
	}
	if st.ExecuteName != "" {
		ps := prepared[st.ExecuteName]
		return ps != nil && ps.ExecuteName == "" && readOnly(ps, nil)
	}
	return true
}

func (ss *session) factsReadOnly(f *sqlfacts.Facts) bool {
	if f == nil {
		return true
	}
	for i := range f.Statements {
		if !readOnly(&f.Statements[i], ss.prepared) {
			return false
		}
	}
	return true
}

// firstCString returns the NUL-terminated string at the start of b.
func firstCString(b []byte) (string, bool) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), true
		}
	}
	return "", false
}

// twoCStrings returns the two NUL-terminated strings at the start of b.
func twoCStrings(b []byte) (string, string, bool) {
	a, ok := firstCString(b)
	if !ok {
		return "", "", false
	}
	c, ok := firstCString(b[len(a)+1:])
	return a, c, ok
}

func denyResponse(code string, d policy.Decision) *pgproto3.ErrorResponse {
	if code == "" {
		code = "42501"
	}
	return &pgproto3.ErrorResponse{Code: code, Message: d.Message()}
}

func auditUnavailable() *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{Code: "58000",
		Message: "warden: the audit log cannot be written; refusing the statement (fail closed)"}
}

// refuse stands in for a refused message. It sends upstream a placeholder
// that PostgreSQL rejects with a syntax error at exactly the point in the
// message stream where the refused one was — a Parse for a Parse, a Query
// for a Query or FunctionCall — so the server itself applies the error
// semantics: an explicit transaction block is aborted (the next statement
// gets 25P02, COMMIT rolls back), an implicit one is rolled back, the
// rest of an extended-protocol batch is skipped until Sync, and
// ReadyForQuery carries the true status. The upstream loop replaces that
// syntax error with resp.
func (ss *session) refuse(typ byte, name string, _ []uint32, resp *pgproto3.ErrorResponse) {
	resp.Severity, resp.SeverityUnlocalized = "ERROR", "ERROR"
	ss.denyMu.Lock()
	ss.nonce++
	n := ss.nonce
	last := ss.syncs
	if typ == 'P' {
		last = ss.syncs + 1 // ended by the next Sync
	}
	ss.denials[n] = denial{resp: resp, lastRFQ: last}
	ss.denyMu.Unlock()
	placeholder := denyMarker + strconv.FormatUint(n, 10)
	switch typ {
	case 'P':
		writeMsg(ss.uw, &ss.scratch, &pgproto3.Parse{Name: name, Query: placeholder})
	default:
		writeMsg(ss.uw, &ss.scratch, &pgproto3.Query{String: placeholder})
	}
}

// fatal sends a FATAL error to the client.
func (ss *session) fatal(code, msg string) {
	// Either loop may call fatal: encode into a buffer of its own.
	b, _ := (&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: code, Message: msg}).Encode(nil)
	ss.cwMu.Lock()
	defer ss.cwMu.Unlock()
	// What is buffered for the client may belong to statements whose
	// records are not durable yet (see ensureDurable): the session ends
	// here, so it is dropped rather than waited for.
	ss.cw.Reset(ss.client)
	ss.cw.Write(b)
	ss.cw.Flush()
}

// record is what an audit record says about a statement.
type record struct {
	seq         int64
	text, kind  string
	fingerprint string
	paramsHash  string
}

// boundText returns text cut to max bytes (at a rune boundary) and the
// digest of the whole of it.
func boundText(text string, max int) (string, string) {
	sum := sha256.Sum256([]byte(text))
	if len(text) > max {
		text = text[:max]
		for !utf8.ValidString(text) && len(text) > 0 {
			text = text[:len(text)-1]
		}
	}
	return text, hex.EncodeToString(sum[:])
}

func newPortal(st *sqlfacts.Statement, params []byte) portal {
	p := portal{st: st}
	// The parameter section (format codes, values, result formats) as
	// sent; two executions with the same digest had the same arguments.
	if len(params) > 0 {
		sum := sha256.Sum256(params)
		p.paramsHash = hex.EncodeToString(sum[:])
	}
	return p
}

// pushDescribe queues a Describe forwarded upstream.
func (ss *session) pushDescribe(d describeExpect) {
	ss.descMu.Lock()
	ss.descs = append(ss.descs, d)
	ss.descMu.Unlock()
}

// push queues an allowed statement forwarded upstream.
func (ss *session) push(f inflight) {
	ss.flightMu.Lock()
	ss.flight = append(ss.flight, f)
	if f.deferred != nil {
		if ex, ok := ss.srv.cfg.Audit.(audit.Expecter); ok {
			ex.Expect(1) // its record will be waited for soon: see submitDeferred
		}
		ss.deferredN.Add(1)
		if !ss.foldArmed {
			if ss.foldTimer == nil {
				ss.foldTimer = time.AfterFunc(foldDelay, ss.unfold)
			} else {
				ss.foldTimer.Reset(foldDelay)
			}
			ss.foldArmed = true
		}
	}
	ss.flightMu.Unlock()
}

// audit records one statement decision. With sync it returns only once
// the record is durable, and an error means the caller must refuse.
// Without sync the record is submitted and the upstream loop holds every
// later response until it is durable; an error then ends the session
// (fail closed) before anything more reaches the client.
func (ss *session) audit(r record, d policy.Decision, sync bool) error {
	ev := ss.decisionEvent(r, d)
	if _, ok := ss.srv.cfg.Audit.(audit.AsyncSink); ok && !sync {
		ss.submitPending(ev)
		return nil
	}
	ctx, cancel := context.WithTimeout(ss.srv.ctx, 10*time.Second)
	defer cancel()
	if err := ss.srv.cfg.Audit.Record(ctx, ev); err != nil {
		ss.srv.log.Error("postgres: audit write failed; refusing", "session", ss.id, "err", err)
		return err
	}
	return nil
}

// decisionEvent is the record of a statement decision.
func (ss *session) decisionEvent(r record, d policy.Decision) *audit.Event {
	ev := ss.evBase
	ev.Kind = audit.KindStatement
	ev.Time = time.Now()
	ev.Seq = r.seq
	if r.text == ss.lastText && ss.lastText != "" {
		// A prepared statement executed again: the same text, digested once.
		ev.Request, ev.RequestHash = ss.lastBound, ss.lastHash
	} else {
		ev.Request, ev.RequestHash = boundText(r.text, ss.srv.cfg.MaxAuditText)
		ss.lastText, ss.lastBound, ss.lastHash = r.text, ev.Request, ev.RequestHash
	}
	ev.StmtKind = r.kind
	ev.Fingerprint = r.fingerprint
	ev.ParamsHash = r.paramsHash
	ev.Policy, ev.Rule, ev.Reason = d.Policy, d.Rule, d.Reason
	switch d.Effect {
	case policy.Allow:
		ev.Decision = audit.Allow
	case policy.Review:
		ev.Decision = reviewDecision
	default:
		ev.Decision = audit.Deny
	}
	return &ev
}

// submitPending submits ev to the (asynchronous) sink: the upstream loop
// waits for it before anything more reaches the client.
func (ss *session) submitPending(ev *audit.Event) {
	p := ss.srv.cfg.Audit.(audit.AsyncSink).Submit(ev)
	ss.addPending(p)
}

// submitDeferred submits a deferred decision record (see
// inflight.deferred), which the sink was told to expect.
func (ss *session) submitDeferred(ev *audit.Event) {
	if ex, ok := ss.srv.cfg.Audit.(audit.Expecter); ok {
		ex.Expect(-1)
	}
	ss.submitPending(ev)
}

func (ss *session) addPending(p audit.Pending) {
	ss.pendMu.Lock()
	ss.pending = append(ss.pending, p)
	ss.pendN.Add(1)
	ss.pendMu.Unlock()
}

// canFold reports whether a read-only statement's decision record may be
// deferred to be written with its result (see inflight.deferred).
func (ss *session) canFold() bool {
	if _, ok := ss.srv.cfg.Audit.(audit.AsyncSink); !ok {
		return false
	}
	// A record submitted now would get a sync of its own at once: let it
	// overlap the statement instead (its result rides the next sync).
	if is, ok := ss.srv.cfg.Audit.(audit.IdleSyncer); ok && is.SyncIdle() {
		return false
	}
	return true
}

// foldDelay bounds how long a statement's decision record is deferred to
// be folded with its result: a statement that runs longer is on record
// (the decision alone, its result later) while it runs.
const foldDelay = 10 * time.Millisecond

// unfold submits every deferred decision record, in order; their results
// will be records of their own. It takes flightMu.
func (ss *session) unfold() {
	ss.flightMu.Lock()
	defer ss.flightMu.Unlock()
	for i := range ss.flight {
		if ev := ss.flight[i].deferred; ev != nil {
			ss.flight[i].deferred = nil
			ss.submitDeferred(ev)
		}
	}
	ss.deferredN.Store(0)
	ss.disarmFold()
}

// disarmFold stops the fold timer; flightMu is held.
func (ss *session) disarmFold() {
	if ss.foldArmed {
		ss.foldTimer.Stop()
		ss.foldArmed = false
	}
}

// ensureDurable is called before anything buffered for the client may
// leave warden (a flush, or a write the buffer cannot hold): it submits
// the deferred decision records — their statements' answers may be in
// the buffer — and waits until every submitted record is durable. An
// error means the client must get nothing more.
func (ss *session) ensureDurable() error {
	if ss.deferredN.Load() > 0 {
		ss.unfold()
	}
	if ss.pendN.Load() > 0 {
		return ss.awaitAudit()
	}
	return nil
}

// awaitAudit waits until every submitted record is durable.
func (ss *session) awaitAudit() error {
	ss.pendMu.Lock()
	ps := ss.pending
	ss.pending = nil
	ss.pendN.Store(0)
	ss.pendMu.Unlock()
	var first error
	for _, p := range ps {
		if err := p.Wait(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// upstreamLoop relays backend messages to the client.
type upstreamLoop struct {
	ss      *session
	err     error
	scratch []byte
	// masking: the plan for the DataRows of the result being relayed, a
	// reusable row buffer, and masked-value counts since the last
	// completion. A plan belongs to one result: it is made from the
	// RowDescription that heads it (the answer to warden's own Describe
	// before an Execute, or the one a simple Query's statement sends) and
	// dropped when the statement completes, fails or is suspended, and at
	// ReadyForQuery. Rows no RowDescription heads are those of an Execute
	// warden did not describe, planned by the client's Describe of its
	// mask-free portal, or else nulled (see unplannedRows).
	plan   *rowPlan
	rowBuf []byte
	counts maskCounts
	rd     pgproto3.RowDescription // reused to check a client's layout
	// rows and bytes of data relayed since the last completion
	rows, bytes int64
}

func (u *upstreamLoop) run() {
	u.err = u.loop()
	u.ss.kill()
}

func (u *upstreamLoop) loop() error {
	ss := u.ss
	r := &ss.ur
	for {
		if r.r.Buffered() == 0 {
			// Nothing more from the server for now: what is buffered goes
			// to the client, once its records are durable.
			if err := u.durable(); err != nil {
				return err
			}
			ss.cwMu.Lock()
			err := ss.cw.Flush()
			ss.cwMu.Unlock()
			if err != nil {
				return err
			}
		}
		typ, n, err := r.header()
		if err != nil {
			return err
		}
		// A message the client buffer cannot hold makes it flush: the
		// records of what is buffered must be durable first.
		if n+5 > ss.cw.Available() {
			if err := u.durable(); err != nil {
				return err
			}
		}
		switch typ {
		case 'E':
			body, err := r.body(typ, n)
			if err != nil {
				return err
			}
			u.plan = nil // the result, if any, ends here
			if resp := u.substitute(body); resp != nil {
				ss.cwMu.Lock()
				err = writeMsg(ss.cw, &u.scratch, resp)
				ss.cwMu.Unlock()
				if err != nil {
					return err
				}
				continue
			}
			u.complete(typ, body)
			ss.cwMu.Lock()
			writeRaw(ss.cw, typ, body)
			ss.cwMu.Unlock()
		case 'C', 'I', 's':
			// CommandComplete, EmptyQueryResponse, PortalSuspended: a
			// statement finished.
			body, err := r.body(typ, n)
			if err != nil {
				return err
			}
			u.complete(typ, body)
			u.plan = nil
			ss.cwMu.Lock()
			writeRaw(ss.cw, typ, body)
			ss.cwMu.Unlock()
		case 'Z':
			body, err := r.body(typ, n)
			if err != nil {
				return err
			}
			u.readyForQuery()
			ss.cwMu.Lock()
			writeRaw(ss.cw, typ, body)
			ss.cwMu.Unlock()
		case 'T', 'n':
			if ss.me == nil {
				goto relay
			}
			{
				body, err := r.body(typ, n)
				if err != nil {
					return err
				}
				if u.describe(typ, body) {
					continue // warden's own Describe: not the client's to see
				}
				ss.cwMu.Lock()
				writeRaw(ss.cw, typ, body)
				ss.cwMu.Unlock()
			}
		case 'D':
			u.rows++
			u.bytes += int64(n) + 5
			if ss.me == nil {
				goto relay
			}
			if u.plan == nil {
				u.plan = u.unplannedRows()
			}
			if !u.plan.any {
				goto relay
			}
			{
				body, err := r.body(typ, n)
				if err != nil {
					return err
				}
				out, _ := ss.me.row(body, u.plan, u.rowBuf, u.counts)
				u.rowBuf = out[:0]
				ss.cwMu.Lock()
				writeRaw(ss.cw, typ, out)
				ss.cwMu.Unlock()
			}
		default:
			goto relay
		}
		continue
	relay:
		{
			if typ == 'd' {
				u.rows++
				u.bytes += int64(n) + 5
			}
			ss.cwMu.Lock()
			writeHeader(ss.cw, typ, n)
			err := relayBody(ss.cw, r.r, n)
			ss.cwMu.Unlock()
			if err != nil {
				return err
			}
		}
	}
}

// durable is ensureDurable for the upstream loop: a record that cannot
// be written ends the session (fail closed) before anything more reaches
// the client.
func (u *upstreamLoop) durable() error {
	ss := u.ss
	if err := ss.ensureDurable(); err != nil {
		ss.srv.log.Error("postgres: audit write failed; closing the session", "session", ss.id, "err", err)
		ss.fatal("58000", "warden: the audit log cannot be written; closing the session (fail closed)")
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// describe handles a RowDescription or NoData while masking: it pops the
// Describe it answers, if any (a simple Query's RowDescription answers
// none), and reports whether the message answers warden's own Describe
// and must not be relayed. The answer to warden's own Describe plans the
// rows of the Execute that follows it; a simple Query's RowDescription
// plans the rows of the statement it heads; the answer to the client's
// Describe of a mask-free portal plans the rows of that portal's
// Executes that warden did not describe; the client's other Describes
// plan nothing.
func (u *upstreamLoop) describe(typ byte, body []byte) bool {
	ss := u.ss
	batch := ss.answering()
	var d *describeExpect
	ss.descMu.Lock()
	if len(ss.descs) > 0 && ss.descs[0].lastRFQ == batch {
		dd := ss.descs[0]
		d = &dd
		ss.descs = ss.descs[1:]
	}
	ss.descMu.Unlock()
	var st *sqlfacts.Statement
	switch {
	case d == nil:
		ss.flightMu.Lock()
		if len(ss.flight) > 0 {
			st = ss.flight[0].st
		}
		ss.flightMu.Unlock()
	case d.injected:
		st = d.st
	case d.layout != nil && typ == 'T':
		l := d.layout
		switch {
		case u.rd.Decode(body) != nil:
			l.plan = &rowPlan{any: true} // every row mismatches: nulled
		case ss.me.layoutClear(ss.ctx, &u.rd, l.st):
			l.plan = relayPlan
		default:
			l.plan = ss.me.plan(ss.ctx, &u.rd, l.st)
		}
		return false
	default:
		return false
	}
	if typ == 'n' {
		u.plan = nil
	} else {
		var rd pgproto3.RowDescription
		if err := rd.Decode(body); err != nil {
			u.plan = &rowPlan{any: true} // every row mismatches: nulled
		} else {
			u.plan = ss.me.plan(ss.ctx, &rd, st)
		}
	}
	return d != nil
}

// answering returns the number of the batch whose answers are arriving:
// the ReadyForQuery that will end it.
func (ss *session) answering() uint64 {
	ss.denyMu.Lock()
	defer ss.denyMu.Unlock()
	return ss.rfqSeen + 1
}

// relayPlan is the plan of a clear layout: nothing to change.
var relayPlan = &rowPlan{}

// unplannedRows returns the plan for DataRows that no RowDescription of
// warden's heads. They are the rows of an Execute that warden did not
// describe, planned by the answer to the client's Describe of its portal
// (relayed as they are if that layout is clear); any others fail closed,
// nulled whole (an empty plan matches no row's layout): warden describes
// every other Execute itself, and a simple Query's rows always follow
// their RowDescription.
func (u *upstreamLoop) unplannedRows() *rowPlan {
	ss := u.ss
	batch := ss.answering()
	var l *portalLayout
	ss.flightMu.Lock()
	if len(ss.flight) > 0 && ss.flight[0].lastRFQ == batch {
		l = ss.flight[0].layout
	}
	ss.flightMu.Unlock()
	if l != nil && l.plan != nil {
		return l.plan
	}
	ss.srv.log.Warn("postgres: result rows with no layout while masking; nulling them", "session", ss.id)
	return &rowPlan{any: true}
}

// complete pops the statement that a completion or error belongs to and
// records what it did. An error belongs to the front statement only if
// that statement is in the batch being answered: an error for a Parse or
// Bind of a later batch must not be blamed on it.
func (u *upstreamLoop) complete(typ byte, body []byte) {
	ss := u.ss
	batch := ss.answering()
	ss.flightMu.Lock()
	if len(ss.flight) == 0 || ss.flight[0].lastRFQ != batch {
		ss.flightMu.Unlock()
		return
	}
	f := ss.flight[0]
	ss.flight = ss.flight[1:]
	if len(ss.flight) == 0 {
		ss.flight = ss.flight[:0:0] // let the backing array go
	}
	if f.deferred != nil && ss.deferredN.Add(-1) == 0 {
		ss.disarmFold()
	}
	ss.flightMu.Unlock()
	rows, bytes := u.rows, u.bytes
	u.rows, u.bytes = 0, 0
	if f.seq == 0 {
		return
	}
	took := time.Since(f.start)
	ss.mt.Completed(took)
	var errText string
	switch typ {
	case 'C':
		if tag, ok := cstring(body); ok {
			if n, ok := tagRows(tag); ok {
				rows = n
			}
		}
	case 'E':
		var e pgproto3.ErrorResponse
		if e.Decode(body) == nil {
			errText = e.Code + ": " + e.Message
		}
	}
	if f.deferred != nil {
		// Nothing of the answer has reached the client yet (see
		// ensureDurable).
		if len(u.counts) == 0 {
			// One record says what was decided and what it did: the
			// client's buffer is flushed once it is durable.
			dec := f.deferred
			dec.DurationUS, dec.Rows, dec.Bytes, dec.Error = took.Microseconds(), rows, bytes, errText
			ss.submitDeferred(dec)
			return
		}
		// Masked values are counted in a result record of their own.
		ss.submitDeferred(f.deferred)
	}
	ev := ss.evBase
	ev.Kind = audit.KindResult
	ev.Time = time.Now()
	ev.Seq = f.seq
	ev.StmtKind = f.kind
	ev.DurationUS = took.Microseconds()
	ev.Bytes = bytes
	ev.Decision = audit.Allow
	ev.Error = errText
	ev.Rows = rows
	if len(u.counts) > 0 {
		ev.Reason = u.counts.String()
		clear(u.counts)
	}
	if f.reviewID != "" {
		result := fmt.Sprintf("%d rows, %d bytes, %v", rows, bytes, took.Round(time.Microsecond))
		if ev.Error != "" {
			result = "error " + ev.Error
		}
		id, rv := f.reviewID, ss.srv.cfg.Reviews
		ss.bg.Add(1)
		go func() {
			defer ss.bg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			rv.Executed(ctx, id, result)
		}()
	}
	// Results describe what already happened: they are recorded, not
	// waited for, and never hold up the client (nor cost a sync of their
	// own: they become durable with the next decision's).
	switch sink := ss.srv.cfg.Audit.(type) {
	case audit.LaterSink:
		sink.RecordLater(&ev)
	case audit.AsyncSink:
		sink.Submit(&ev)
	}
}

// tagRows returns the row count of a CommandComplete tag ("SELECT 5",
// "INSERT 0 5", "UPDATE 3", "COPY 10"; "55.7 Message Formats").
func tagRows(tag string) (int64, bool) {
	i := strings.LastIndexByte(tag, ' ')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(tag[i+1:], 10, 64)
	return n, err == nil
}

// substitute returns the refusal that a placeholder's syntax error stands
// for, or nil if the error is PostgreSQL's own.
func (u *upstreamLoop) substitute(body []byte) *pgproto3.ErrorResponse {
	ss := u.ss
	ss.denyMu.Lock()
	pending := len(ss.denials)
	ss.denyMu.Unlock()
	if pending == 0 {
		return nil
	}
	var e pgproto3.ErrorResponse
	if e.Decode(body) != nil || e.Code != "42601" {
		return nil
	}
	i := strings.Index(e.Message, denyMarker)
	if i < 0 {
		return nil
	}
	rest := e.Message[i+len(denyMarker):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	n, err := strconv.ParseUint(rest[:j], 10, 64)
	if err != nil {
		return nil
	}
	ss.denyMu.Lock()
	d, ok := ss.denials[n]
	delete(ss.denials, n)
	ss.denyMu.Unlock()
	if !ok {
		return nil
	}
	return d.resp
}

// readyForQuery drops refusals whose batch has ended without their
// placeholder being reached (an earlier error skipped it).
func (u *upstreamLoop) readyForQuery() {
	ss := u.ss
	ss.denyMu.Lock()
	ss.rfqSeen++
	seen := ss.rfqSeen
	for n, d := range ss.denials {
		if d.lastRFQ <= seen {
			delete(ss.denials, n)
		}
	}
	ss.denyMu.Unlock()
	// Statements of this batch still queued were skipped after an error.
	ss.flightMu.Lock()
	i := 0
	for i < len(ss.flight) && ss.flight[i].lastRFQ <= seen {
		// Still on record, as decided and forwarded.
		if ev := ss.flight[i].deferred; ev != nil {
			ss.submitDeferred(ev)
			if ss.deferredN.Add(-1) == 0 {
				ss.disarmFold()
			}
		}
		i++
	}
	ss.flight = ss.flight[i:]
	ss.flightMu.Unlock()
	ss.descMu.Lock()
	j := 0
	for j < len(ss.descs) && ss.descs[j].lastRFQ <= seen {
		j++
	}
	ss.descs = ss.descs[j:]
	ss.descMu.Unlock()
	u.rows, u.bytes = 0, 0
	u.plan = nil
}
