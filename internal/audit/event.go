// Package audit defines the audit event model and the Sink that stores
// events durably. A Sink's Record returns only once the event is durable
// (or queued in a group commit that completes before Record returns): the
// proxy calls it before a result reaches the client, and refuses the
// request if it fails. It knows nothing about wire protocols.
package audit

import (
	"context"
	"time"
)

// Decision values.
const (
	Allow = "allow"
	Deny  = "deny"
	Error = "error" // the request could not be decided (unparseable, auth failure)
)

// Event kinds.
const (
	KindLoginFailed  = "login.failed"
	KindSessionStart = "session.start"
	KindSessionEnd   = "session.end"
	KindStatement    = "statement"        // a decision, recorded before the statement runs or is refused
	KindResult       = "statement.result" // what an allowed statement did: rows, bytes, duration, error
	KindAdmin        = "admin"            // an operator action on the admin API (Request names it)
)

// Event is one audit record. Never put a token or password in it.
type Event struct {
	ID        int64     `json:"id"`                   // assigned by the store
	Time      time.Time `json:"time"`                 // when warden saw the request
	Kind      string    `json:"kind"`                 // one of the Kind* constants
	SessionID string    `json:"session_id,omitempty"` // warden's id for the client connection
	Protocol  string    `json:"protocol,omitempty"`   // "postgres"
	Target    string    `json:"target,omitempty"`
	Client    string    `json:"client,omitempty"` // client address

	Subject string   `json:"subject,omitempty"`
	Issuer  string   `json:"issuer,omitempty"`
	Groups  []string `json:"groups,omitempty"`
	TokenID string   `json:"token_id,omitempty"`

	Request     string `json:"request,omitempty"`      // SQL text, bounded
	RequestHash string `json:"request_hash,omitempty"` // sha256 hex of the full request text
	StmtKind    string `json:"stmt_kind,omitempty"`    // e.g. "select", "delete"
	Decision    string `json:"decision"`               // Allow, Deny, Error
	Policy      string `json:"policy,omitempty"`       // policy that decided ("" for default deny)
	Rule        string `json:"rule,omitempty"`         // rule that decided
	Reason      string `json:"reason,omitempty"`       // human-readable why
	Error       string `json:"error,omitempty"`

	Seq         int64  `json:"seq,omitempty"`         // statement number within the session; links a result to its decision
	Fingerprint string `json:"fingerprint,omitempty"` // normalized statement (constants removed), for grouping
	ParamsHash  string `json:"params_hash,omitempty"` // sha256 hex of the bind parameters, if any
	DurationUS  int64  `json:"duration_us,omitempty"` // statement duration in microseconds (results)
	Rows        int64  `json:"rows,omitempty"`        // rows returned or affected (results)
	Bytes       int64  `json:"bytes,omitempty"`       // bytes sent to the client (results)
	Status      int64  `json:"status,omitempty"`      // HTTP status answered to an http or kubernetes request
}

// Sink stores events durably.
type Sink interface {
	// Record stores ev durably before returning. An error means the event
	// is not stored, and the caller must refuse the request it describes.
	Record(ctx context.Context, ev *Event) error
}

// AsyncSink is a Sink that can start a write and let the caller wait for
// it later, so the write overlaps other work. The caller must not release
// anything that depends on the record being durable (a result, an
// acknowledgement) before Pending.Wait returns nil.
type AsyncSink interface {
	Sink
	Submit(ev *Event) Pending
}

// LaterSink is an AsyncSink that also takes events nobody waits for:
// what a request did, recorded after its answer was released (a
// statement's result). The store writes such an event at once, in order
// with every other, and makes it durable with the next group somebody
// does wait for, or within a short delay if none comes: it costs no sync
// of its own. A failure is the store's to log and report as unhealthy.
type LaterSink interface {
	AsyncSink
	RecordLater(ev *Event)
}

// Expecter is a Sink that can be told of events about to be submitted
// and waited for (a statement running whose record is written with its
// result), so that its group commit can wait briefly to make them durable
// with the same sync. Expect(1) announces one; the caller calls
// Expect(-1) just before it submits it, and for every announced event.
type Expecter interface {
	Expect(n int)
}

// IdleSyncer is a Sink that can tell whether a record submitted now would
// be synced at once, alone: nothing queued, no sync under way. A proxy
// then does better to submit a record early, so the sync overlaps the
// request, than to hold it back to fold it with the result.
type IdleSyncer interface {
	SyncIdle() bool
}

// Pending is a submitted event.
type Pending interface {
	// Wait returns nil once the event is durable, or why it is not.
	Wait() error
}
