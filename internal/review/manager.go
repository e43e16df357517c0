package review

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/identity"
)

// Limits on what one review holds and records.
const (
	// MaxCommentBytes bounds an approver's comment; longer ones are cut.
	MaxCommentBytes = 1024
	// MaxResultBytes bounds the result Executed stores and audits.
	MaxResultBytes = 4096
	// maxListLimit caps Filter.Limit, as documented on Filter.
	maxListLimit     = 1000
	defaultListLimit = 100
)

// Config configures a Manager. Store, Audit and IsApprover are required;
// every other field has the default its comment names.
type Config struct {
	// Store persists reviews. Required.
	Store Store

	// Audit records every step of a review's life (the Kind* constants).
	// Required: a decision that cannot be recorded does not take effect.
	Audit audit.Sink

	// Notifier, if not nil, is told when a review is proposed, approved
	// (fully) or denied. Notifications run in the background, bounded by
	// NotifyTimeout; a failure is logged and audited as a KindReviewNote
	// and changes nothing else. Default nil: nobody is told.
	Notifier Notifier

	// ReviewTTL is how long a pending review may be decided. Default 1h.
	ReviewTTL time.Duration

	// GrantTTL is how long an approved review may be claimed (run once).
	// Default 15m.
	GrantTTL time.Duration

	// ConsoleURL is the base URL of the web console, such as
	// http://127.0.0.1:8080; a review's link is ConsoleURL+"/reviews/"+id.
	// Default "": links are relative ("/reviews/"+id).
	ConsoleURL string

	// IsApprover reports whether p may approve or deny r: an admin, or a
	// match of r's rule's approvers expression (r.Approvers). Required.
	// The requester can never decide its own review, whatever it returns.
	IsApprover func(p *identity.Principal, r *Review) bool

	// Logger receives what goes wrong in the background (a failed
	// notification, an expiry that could not be audited). Default:
	// discard.
	Logger *slog.Logger

	// Now is the clock. Default time.Now.
	Now func() time.Time

	// PollInterval is how often Wait re-reads the Store, to see decisions
	// made by another replica or before a restart. Decisions made through
	// this Manager wake waiters at once. Default 2s.
	PollInterval time.Duration

	// NotifyTimeout bounds one notification. Default 10s.
	NotifyTimeout time.Duration

	// MaxNotifications bounds the notifications in flight; beyond it new
	// ones are dropped (logged and audited). Default 64.
	MaxNotifications int

	// MaxAuditText bounds the statement text stored in one audit event;
	// RequestHash always covers the whole text. Default 4096.
	MaxAuditText int
}

// checkAndSetDefaults validates c and fills in the defaults.
func (c *Config) checkAndSetDefaults() error {
	switch {
	case c.Store == nil:
		return errors.New("review: config: Store is required")
	case c.Audit == nil:
		return errors.New("review: config: Audit is required")
	case c.IsApprover == nil:
		return errors.New("review: config: IsApprover is required")
	case c.ReviewTTL < 0, c.GrantTTL < 0, c.PollInterval < 0, c.NotifyTimeout < 0:
		return errors.New("review: config: durations must not be negative")
	case c.MaxNotifications < 0, c.MaxAuditText < 0:
		return errors.New("review: config: limits must not be negative")
	}
	if c.ConsoleURL != "" {
		u, err := url.Parse(c.ConsoleURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("review: config: ConsoleURL %q is not an absolute http(s) URL", c.ConsoleURL)
		}
	}
	if c.ReviewTTL == 0 {
		c.ReviewTTL = time.Hour
	}
	if c.GrantTTL == 0 {
		c.GrantTTL = 15 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.PollInterval == 0 {
		c.PollInterval = 2 * time.Second
	}
	if c.NotifyTimeout == 0 {
		c.NotifyTimeout = 10 * time.Second
	}
	if c.MaxNotifications == 0 {
		c.MaxNotifications = 64
	}
	if c.MaxAuditText == 0 {
		c.MaxAuditText = 4096
	}
	return nil
}

// Manager runs the review lifecycle over a Store: it creates reviews,
// lets callers wait for their decision, records approvals and denials,
// hands out single-use grants and expires what nobody decided or used.
// Every step is audited. It is safe for concurrent use; Close (or
// Shutdown) stops its background notifications.
//
// Ordering with the audit log follows "fail closed": a step that grants
// something (an approval) is recorded before it is stored, so no grant
// can exist without its record; a step that takes something away (a
// denial, an expiry) is stored first, so a failing audit log cannot keep
// a request alive.
type Manager struct {
	cfg   Config
	store Store

	hub   hub        // wakes this process's waiters when a review changes
	locks keyedLocks // serializes Request per fingerprint and decisions per review

	// Background notifications: bounded by notifySem, owned by wg, stopped
	// by cancel.
	baseCtx   context.Context
	cancel    context.CancelFunc
	notifySem chan struct{}
	wg        sync.WaitGroup

	// mu guards closed, so no notification starts after Close began to
	// wait.
	mu     sync.Mutex
	closed bool
}

// NewManager checks cfg, fills in its defaults and returns a Manager.
func NewManager(cfg Config) (*Manager, error) {
	if err := cfg.checkAndSetDefaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		cfg:       cfg,
		store:     cfg.Store,
		baseCtx:   ctx,
		cancel:    cancel,
		notifySem: make(chan struct{}, cfg.MaxNotifications),
	}, nil
}

// Close cancels the notifications in flight and waits for them to end.
// The Manager's other methods keep working, but no notification is sent
// any more. Close is idempotent.
func (m *Manager) Close() error {
	m.stopNotifying()
	m.cancel()
	m.wg.Wait()
	return nil
}

// Shutdown is Close that first lets the notifications in flight finish
// (each is bounded by NotifyTimeout) until ctx ends; it returns ctx's
// error if it had to cancel them.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.stopNotifying()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		m.cancel()
		return nil
	case <-ctx.Done():
		m.cancel()
		<-done
		return ctx.Err()
	}
}

func (m *Manager) stopNotifying() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
}

func (m *Manager) now() time.Time { return m.cfg.Now() }

// URL returns the console link of review id.
func (m *Manager) URL(id string) string { return consoleLink(m.cfg.ConsoleURL, id) }

func consoleLink(base, id string) string {
	return strings.TrimRight(base, "/") + "/reviews/" + url.PathEscape(id)
}

// newID returns a random, URL-safe review id: "rv_" and 16 lowercase
// base32 characters (80 random bits).
func newID() (string, error) {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "rv_" + strings.ToLower(base32.StdEncoding.EncodeToString(b[:])), nil
}

// Request holds req for review. If a pending, unexpired review with the
// same Fingerprint exists it is returned, so a client that retries while
// waiting does not create a second one. Otherwise a new review is
// stored, audited (KindReviewProposed) and the Notifier is told in the
// background. If the proposal cannot be audited the review is withdrawn
// (expired) and the error returned: nothing unaudited can be approved.
func (m *Manager) Request(ctx context.Context, req Request) (*Review, error) {
	switch {
	case req.Principal == nil || req.Principal.Subject == "":
		return nil, errors.New("review: request: no requester")
	case req.Target == "" || req.Protocol == "":
		return nil, errors.New("review: request: no target or protocol")
	case req.Statement == "":
		return nil, errors.New("review: request: empty statement")
	}
	fp := Fingerprint(req)

	// One creator per fingerprint at a time in this process, so two
	// concurrent retries cannot both miss the pending review and both
	// create one.
	unlock, err := m.locks.lock(ctx, "fp:"+fp)
	if err != nil {
		return nil, fmt.Errorf("review: request: %w", err)
	}
	defer unlock()

	switch r, err := m.store.FindReview(ctx, fp, Pending); {
	case err == nil:
		r, err = m.settle(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("review: request: %w", err)
		}
		if r.State == Pending {
			return r, nil
		}
	case !errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("review: request: find: %w", err)
	}

	id, err := newID()
	if err != nil {
		return nil, fmt.Errorf("review: request: id: %w", err)
	}
	now := m.now()
	p := req.Principal
	r := &Review{
		ID:            id,
		State:         Pending,
		Fingerprint:   fp,
		Subject:       p.Subject,
		Issuer:        p.Issuer,
		Groups:        slices.Clone(p.Groups),
		SessionID:     req.SessionID,
		Protocol:      req.Protocol,
		Target:        req.Target,
		Statement:     req.Statement,
		Kind:          req.Kind,
		ParamsHash:    req.ParamsHash,
		PolicyVersion: req.PolicyVersion,
		Policy:        req.Policy,
		Rule:          req.Rule,
		Reason:        req.Reason,
		MinApprovals:  max(1, req.MinApprovals),
		Approvers:     req.Approvers,
		CreatedAt:     now,
		ExpiresAt:     now.Add(m.cfg.ReviewTTL),
	}
	if err := m.store.CreateReview(ctx, clone(r)); err != nil {
		return nil, fmt.Errorf("review: request: create: %w", err)
	}

	reason := fmt.Sprintf("proposed: %s on %s held by rule %s; needs %d approval(s) by %s",
		orUnknown(r.Kind), r.Target, ruleName(r), r.MinApprovals, r.ExpiresAt.UTC().Format(time.RFC3339))
	if r.Reason != "" {
		reason += "; " + r.Reason
	}
	ev := m.event(KindReviewProposed, DecisionReview, r, p, reason)
	ev.SessionID = r.SessionID
	if err := m.cfg.Audit.Record(ctx, ev); err != nil {
		m.withdraw(r)
		return nil, fmt.Errorf("review: request: audit: %w", err)
	}
	m.notify(r, KindReviewProposed)
	return clone(r), nil
}

// withdraw expires a review whose proposal could not be audited. It runs
// detached from the caller's context (which may be what failed) with a
// short bound of its own.
func (m *Manager) withdraw(r *Review) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(m.baseCtx), 5*time.Second)
	defer cancel()
	w := clone(r)
	w.State = Expired
	if err := m.store.UpdateReview(ctx, w, Pending); err != nil {
		m.cfg.Logger.Error("review: cannot withdraw an unaudited review", "review", r.ID, "err", err)
		return
	}
	m.hub.broadcast(r.ID)
}

// Get returns review id (ErrNotFound), expiring it first if its time has
// passed.
func (m *Manager) Get(ctx context.Context, id string) (*Review, error) {
	r, err := m.get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("review: get %s: %w", id, err)
	}
	return r, nil
}

func (m *Manager) get(ctx context.Context, id string) (*Review, error) {
	r, err := m.store.GetReview(ctx, id)
	if err != nil {
		return nil, err
	}
	return m.settle(ctx, r)
}

// List returns the reviews f selects, expiring those whose time has
// passed; with f.State set, a review that expired on the way is left out.
func (m *Manager) List(ctx context.Context, f Filter) ([]*Review, error) {
	if f.Limit <= 0 {
		f.Limit = defaultListLimit
	}
	f.Limit = min(f.Limit, maxListLimit)
	rs, err := m.store.ListReviews(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("review: list: %w", err)
	}
	out := make([]*Review, 0, len(rs))
	for _, r := range rs {
		r, err := m.settle(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("review: list: %w", err)
		}
		if f.State == "" || r.State == f.State {
			out = append(out, r)
		}
	}
	return out, nil
}

// settle moves r to Expired if its time has passed: a pending review past
// ExpiresAt, an approved one past GrantExpires. The move is a
// compare-and-set; whoever wins it audits KindReviewExpired, and a loser
// re-reads. It returns a copy of the current review.
func (m *Manager) settle(ctx context.Context, r *Review) (*Review, error) {
	// Each conflict means the state moved on (pending → approved →
	// executed is the longest run), so a few rounds are enough.
	for range 4 {
		now := m.now()
		var why string
		switch {
		case r.State == Pending && !now.Before(r.ExpiresAt):
			why = "expired: not decided by " + r.ExpiresAt.UTC().Format(time.RFC3339)
		case r.State == Approved && !now.Before(r.GrantExpires):
			why = "expired: approved but not run by " + r.GrantExpires.UTC().Format(time.RFC3339)
		default:
			return clone(r), nil
		}
		from := r.State
		next := clone(r)
		next.State = Expired
		err := m.store.UpdateReview(ctx, next, from)
		if errors.Is(err, ErrConflict) {
			if r, err = m.store.GetReview(ctx, r.ID); err != nil {
				return nil, fmt.Errorf("expire %s: %w", next.ID, err)
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("expire %s: %w", next.ID, err)
		}
		m.hub.broadcast(next.ID)
		// The expiry stands whether or not it is recorded: it only takes
		// something away.
		if err := m.cfg.Audit.Record(ctx, m.event(KindReviewExpired, audit.Deny, next, nil, why)); err != nil {
			m.cfg.Logger.Error("review: expiry not audited", "review", next.ID, "err", err)
		}
		return next, nil
	}
	return nil, fmt.Errorf("expire %s: %w", r.ID, ErrConflict)
}

// Wait blocks until review id leaves Pending (approved, denied, expired)
// and returns it. If ctx ends first it returns the review as last read
// (still Pending) and ctx's error. Decisions made through this Manager
// wake it at once; the Store is re-read every PollInterval, and at
// ExpiresAt, for decisions made elsewhere (another replica, before a
// restart) and for expiry. It starts no goroutine.
func (m *Manager) Wait(ctx context.Context, id string) (*Review, error) {
	var last *Review
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		// Watch before reading, so a change between the read and the
		// select still wakes us.
		changed, release := m.hub.watch(id)
		r, err := m.get(ctx, id)
		if err != nil {
			release()
			if ctx.Err() != nil {
				return last, ctx.Err()
			}
			return nil, fmt.Errorf("review: wait %s: %w", id, err)
		}
		last = r
		if r.State != Pending {
			release()
			return r, nil
		}
		d := m.cfg.PollInterval
		if untilExpiry := r.ExpiresAt.Sub(m.now()); untilExpiry < d {
			d = max(untilExpiry, 10*time.Millisecond)
		}
		timer.Reset(d)
		select {
		case <-changed:
		case <-timer.C:
		case <-ctx.Done():
			release()
			return last, ctx.Err()
		}
		release()
		timer.Stop()
	}
}

// Claim is the single-use grant. It finds an approved review with this
// fingerprint whose grant has not expired and moves it to Executed with a
// compare-and-set, so of any number of concurrent claims (on any replica)
// exactly one wins. It returns ok=false if there is nothing to claim. An
// approved review whose grant expired is moved to Expired on the way.
// The caller runs the request only if ok, then reports with Executed.
func (m *Manager) Claim(ctx context.Context, fingerprint string) (*Review, bool, error) {
	for range 8 {
		r, err := m.store.FindReview(ctx, fingerprint, Approved)
		if errors.Is(err, ErrNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("review: claim: %w", err)
		}
		now := m.now()
		if !now.Before(r.GrantExpires) {
			if _, err := m.settle(ctx, r); err != nil {
				return nil, false, fmt.Errorf("review: claim: %w", err)
			}
			continue // an older approval may still be valid
		}
		next := clone(r)
		next.State = Executed
		next.ExecutedAt = now
		err = m.store.UpdateReview(ctx, next, Approved)
		if errors.Is(err, ErrConflict) {
			continue // someone else claimed or expired it; look again
		}
		if err != nil {
			return nil, false, fmt.Errorf("review: claim %s: %w", r.ID, err)
		}
		m.hub.broadcast(next.ID)
		return clone(next), true, nil
	}
	// Persistent conflicts: others are claiming. Failing closed is right.
	return nil, false, nil
}

// Executed records what running a claimed review did: it audits
// KindReviewExecuted with result (cut to MaxResultBytes), then stores
// result on the review. The request has already run, so nothing can be
// refused any more: a failure (the review was not claimed, the audit log
// or the Store failed) is logged at Error level.
func (m *Manager) Executed(ctx context.Context, id, result string) {
	if err := m.executed(ctx, id, result); err != nil {
		m.cfg.Logger.Error("review: execution result not recorded", "review", id, "err", err)
	}
}

func (m *Manager) executed(ctx context.Context, id, result string) error {
	unlock, err := m.locks.lock(ctx, "id:"+id)
	if err != nil {
		return fmt.Errorf("review: executed %s: %w", id, err)
	}
	defer unlock()
	r, err := m.store.GetReview(ctx, id)
	if err != nil {
		return fmt.Errorf("review: executed %s: %w", id, err)
	}
	if r.State != Executed {
		return fmt.Errorf("review: executed %s: state %s: %w", id, r.State, ErrNotClaimed)
	}
	result = truncate(result, MaxResultBytes)
	if err := m.cfg.Audit.Record(ctx, m.event(KindReviewExecuted, audit.Allow, r, nil, "executed: "+result)); err != nil {
		return fmt.Errorf("review: executed %s: audit: %w", id, err)
	}
	next := clone(r)
	next.Result = result
	if err := m.store.UpdateReview(ctx, next, Executed); err != nil {
		return fmt.Errorf("review: executed %s: %w", id, err)
	}
	return nil
}

// Approve records approver's yes on review id, with an optional comment.
// It fails with ErrNotFound; ErrSelfApproval if approver requested it;
// ErrNotApprover if IsApprover says no; ErrNotPending if it is no longer
// pending (an expired review is expired first); ErrDuplicate if approver
// already approved it. When max(1, MinApprovals) distinct approvers have
// approved, the review becomes Approved and its grant may be claimed
// until now+GrantTTL. Each approval is audited (KindReviewApproved)
// before it is stored; waiters are woken.
func (m *Manager) Approve(ctx context.Context, id string, approver *identity.Principal, comment string) (*Review, error) {
	unlock, r, err := m.decide(ctx, id, approver)
	if err != nil {
		return nil, fmt.Errorf("review: approve %s: %w", id, err)
	}
	defer unlock()
	for _, a := range r.Approvals {
		if a.By == approver.Subject && a.Issuer == approver.Issuer {
			return nil, fmt.Errorf("review: approve %s: %w", id, ErrDuplicate)
		}
	}

	now := m.now()
	comment = truncate(comment, MaxCommentBytes)
	next := clone(r)
	next.Approvals = append(next.Approvals, Approval{By: approver.Subject, Issuer: approver.Issuer, Comment: comment, Time: now})
	have, need := distinctApprovers(next.Approvals), max(1, next.MinApprovals)
	if have >= need {
		next.State = Approved
		next.DecidedAt = now
		next.GrantExpires = now.Add(m.cfg.GrantTTL)
	}

	reason := fmt.Sprintf("approved by %s (%d of %d)", approver.Subject, have, need)
	if next.State == Approved {
		reason += "; may run once until " + next.GrantExpires.UTC().Format(time.RFC3339)
	}
	if comment != "" {
		reason += ": " + comment
	}
	if err := m.cfg.Audit.Record(ctx, m.event(KindReviewApproved, audit.Allow, next, approver, reason)); err != nil {
		return nil, fmt.Errorf("review: approve %s: audit: %w", id, err)
	}
	if err := m.store.UpdateReview(ctx, next, Pending); err != nil {
		// The approval is in the audit log but did not take effect: say so
		// there too, so the log does not claim a grant that never existed.
		m.note(ctx, next, approver, "approval by "+approver.Subject+" not applied", err)
		return nil, fmt.Errorf("review: approve %s: %w", id, err)
	}
	m.hub.broadcast(id)
	if next.State == Approved {
		m.notify(next, KindReviewApproved)
	}
	return clone(next), nil
}

// Deny records approver's no on review id: the review becomes Denied at
// once (one denial is enough, whatever MinApprovals says). The checks and
// errors are Approve's, without ErrDuplicate. The denial is stored first
// and then audited (KindReviewDenied); waiters are woken.
func (m *Manager) Deny(ctx context.Context, id string, approver *identity.Principal, comment string) (*Review, error) {
	unlock, r, err := m.decide(ctx, id, approver)
	if err != nil {
		return nil, fmt.Errorf("review: deny %s: %w", id, err)
	}
	defer unlock()

	now := m.now()
	comment = truncate(comment, MaxCommentBytes)
	next := clone(r)
	next.State = Denied
	next.DeniedBy = approver.Subject
	next.DenyComment = comment
	next.DecidedAt = now
	if err := m.store.UpdateReview(ctx, next, Pending); err != nil {
		return nil, fmt.Errorf("review: deny %s: %w", id, err)
	}
	m.hub.broadcast(id)

	reason := "denied by " + approver.Subject
	if comment != "" {
		reason += ": " + comment
	}
	if err := m.cfg.Audit.Record(ctx, m.event(KindReviewDenied, audit.Deny, next, approver, reason)); err != nil {
		// The denial stands (it only takes something away), but the
		// caller must know it is not in the audit log.
		return nil, fmt.Errorf("review: deny %s: denied, but not audited: %w", id, err)
	}
	m.notify(next, KindReviewDenied)
	return clone(next), nil
}

// decide runs the checks Approve and Deny share and returns the pending
// review with the review's lock held; the caller must call unlock.
func (m *Manager) decide(ctx context.Context, id string, approver *identity.Principal) (unlock func(), r *Review, err error) {
	if approver == nil || approver.Subject == "" {
		return nil, nil, ErrNotApprover
	}
	release, err := m.locks.lock(ctx, "id:"+id)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	if r, err = m.store.GetReview(ctx, id); err != nil {
		return nil, nil, err
	}
	// Identity checks come before the state so that a requester learns
	// nothing from trying, and is told plainly why it cannot.
	if approver.Subject == r.Subject && approver.Issuer == r.Issuer {
		return nil, nil, ErrSelfApproval
	}
	if !m.cfg.IsApprover(approver, clone(r)) {
		return nil, nil, ErrNotApprover
	}
	if r, err = m.settle(ctx, r); err != nil {
		return nil, nil, err
	}
	if r.State != Pending {
		return nil, nil, fmt.Errorf("%w: it is %s", ErrNotPending, r.State)
	}
	return release, r, nil
}

// distinctApprovers counts approvals by distinct (issuer, subject).
func distinctApprovers(as []Approval) int {
	seen := make(map[[2]string]struct{}, len(as))
	for _, a := range as {
		seen[[2]string{a.Issuer, a.By}] = struct{}{}
	}
	return len(seen)
}

// note audits (KindReviewNote) and logs that something around review r
// went wrong. Best effort: its own failure is only logged.
func (m *Manager) note(ctx context.Context, r *Review, actor *identity.Principal, what string, cause error) {
	m.cfg.Logger.Warn("review: "+what, "review", r.ID, "err", cause)
	ev := m.event(KindReviewNote, audit.Error, r, actor, what)
	ev.Error = cause.Error()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := m.cfg.Audit.Record(ctx, ev); err != nil {
		m.cfg.Logger.Error("review: note not audited", "review", r.ID, "note", what, "err", err)
	}
}

// notify tells the Notifier about r in the background. It never blocks
// the caller: when MaxNotifications are in flight, or after Close, the
// notification is dropped (and that is noted).
func (m *Manager) notify(r *Review, event string) {
	if m.cfg.Notifier == nil {
		return
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	select {
	case m.notifySem <- struct{}{}:
	default:
		m.mu.Unlock()
		m.note(m.baseCtx, r, nil, "notification "+event+" dropped", errors.New("too many notifications in flight"))
		return
	}
	m.wg.Add(1)
	m.mu.Unlock()
	go m.deliver(clone(r), event)
}

// deliver sends one notification; it is the body of notify's goroutine,
// owned by m.wg.
func (m *Manager) deliver(r *Review, event string) {
	defer m.wg.Done()
	defer func() { <-m.notifySem }()
	ctx, cancel := context.WithTimeout(m.baseCtx, m.cfg.NotifyTimeout)
	defer cancel()
	if err := m.cfg.Notifier.Notify(ctx, r, event); err != nil {
		// A failed notification changes nothing about the review: nobody
		// was told, so nobody approves, and it expires.
		m.note(m.baseCtx, r, nil, "notification "+event+" failed", err)
	}
}

// clone returns a deep copy of r, so a caller (or the Store) never shares
// slices with another.
func clone(r *Review) *Review {
	c := *r
	c.Groups = slices.Clone(r.Groups)
	c.Approvals = slices.Clone(r.Approvals)
	return &c
}

func ruleName(r *Review) string {
	if r.Policy == "" {
		return orUnknown(r.Rule)
	}
	return r.Policy + "/" + orUnknown(r.Rule)
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}
