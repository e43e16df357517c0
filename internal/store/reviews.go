package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/warden-gateway/warden/internal/review"
)

// Reviews are the held requests of package review, stored in the reviews
// table (schema version 3, see sqliteMigrations). The store knows nothing
// of the review lifecycle: it stores what the Manager hands it, and its
// one rule is UpdateReview's compare-and-set on the state, which is what
// makes a decision, and the claim of a grant, happen once.
//
// Writes run as jobs on the writer goroutine, each in a transaction of its
// own, like revocations: they never share a transaction with an audit
// batch and never touch the hash chain. They return once committed with
// synchronous=FULL, so a review the caller was told about survives a
// crash. Reads use the read pool and see every write that has returned.
//
// Times are stored in UTC with nanosecond precision and come back in UTC
// without a monotonic reading. Empty lists (Groups, Approvals) come back
// nil.

// Review list bounds (review.Filter.Limit).
const (
	defaultReviewLimit = 100
	maxReviewLimit     = 1000
)

// reviewColumns are the reviews table's columns in the order encodeReview
// produces and scanReview reads them; id comes first.
var reviewColumns = []string{
	"id", "state", "fingerprint",
	"subject", "issuer", "groups", "session_id", "protocol", "target",
	"statement", "kind", "params_hash", "policy_version", "policy", "rule", "reason",
	"min_approvals", "approvers",
	"approvals", "denied_by", "deny_comment",
	"created_at", "expires_at", "decided_at", "grant_expires", "executed_at", "result",
}

var (
	selectReview = `SELECT ` + strings.Join(reviewColumns, ", ") + ` FROM reviews`

	// insertReview does nothing on a duplicate id, which CreateReview
	// reports as a conflict rather than overwriting a review.
	insertReview = `INSERT INTO reviews (` + strings.Join(reviewColumns, ", ") + `) VALUES (?` +
		strings.Repeat(", ?", len(reviewColumns)-1) + `) ON CONFLICT (id) DO NOTHING`

	// updateReview takes the values of every column but id, then id and
	// the expected state.
	updateReview = `UPDATE reviews SET ` + strings.Join(reviewColumns[1:], " = ?, ") + ` = ? WHERE id = ? AND state = ?`
)

// storedApproval is review.Approval as stored in the approvals column. The
// keys are this package's, so renaming a field of review.Approval (or its
// JSON tag, which is the admin API's) cannot make stored approvals
// unreadable.
type storedApproval struct {
	By      string `json:"by"`
	Issuer  string `json:"issuer"`
	Comment string `json:"comment,omitempty"`
	Time    string `json:"time,omitempty"` // timeLayout, UTC; absent if zero
}

// CreateReview stores r, a review the store has not seen. It returns once
// the review is durable. A review with r.ID already stored is not touched
// and the error matches review.ErrConflict. r must have an ID, a State, a
// CreatedAt and an ExpiresAt; r is not modified.
func (s *SQLite) CreateReview(ctx context.Context, r *review.Review) error {
	args, err := encodeReview(r)
	if err != nil {
		return fmt.Errorf("store: create review: %w", err)
	}
	err = s.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, insertReview, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("id already exists: %w", review.ErrConflict)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: create review %q: %w", r.ID, err)
	}
	return nil
}

// UpdateReview replaces the stored review r.ID by r if its stored state is
// still from, and returns once the change is durable. Otherwise it changes
// nothing and returns an error matching review.ErrConflict, or
// review.ErrNotFound if there is no review r.ID. Of concurrent updates
// from the same state (two approvers, two replicas), exactly one wins.
//
// Only the state is compared: two updates that both keep the state (say,
// two approvals of a review needing three) both succeed, and the second
// replaces the first. A caller that must not lose such an update has to
// serialise it itself.
func (s *SQLite) UpdateReview(ctx context.Context, r *review.Review, from review.State) error {
	args, err := encodeReview(r)
	if err != nil {
		return fmt.Errorf("store: update review: %w", err)
	}
	if from == "" {
		return fmt.Errorf("store: update review %q: empty from state", r.ID)
	}
	args = append(args[1:], r.ID, string(from))
	err = s.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, updateReview, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 1 {
			return nil
		}
		// Nothing matched: tell a lost race from a wrong id. Inside the
		// same transaction, so the answer is about the same snapshot.
		var state string
		err = tx.QueryRowContext(ctx, `SELECT state FROM reviews WHERE id = ?`, r.ID).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			return review.ErrNotFound
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("state is %s, not %s: %w", state, from, review.ErrConflict)
	})
	if err != nil {
		return fmt.Errorf("store: update review %q: %w", r.ID, err)
	}
	return nil
}

// GetReview returns the review id, or an error matching
// review.ErrNotFound.
func (s *SQLite) GetReview(ctx context.Context, id string) (*review.Review, error) {
	r, err := scanReview(s.rdb.QueryRowContext(ctx, selectReview+` WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = review.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get review %q: %w", id, err)
	}
	return r, nil
}

// FindReview returns the newest review (by CreatedAt, then by insertion)
// with this fingerprint whose state is one of states, or an error matching
// review.ErrNotFound. Calling it without states is an error, not a search
// over every state: a caller looking for a grant to claim must say which
// states count.
func (s *SQLite) FindReview(ctx context.Context, fingerprint string, states ...review.State) (*review.Review, error) {
	if len(states) == 0 {
		return nil, errors.New("store: find review: no states given")
	}
	args := make([]any, 0, 1+len(states))
	args = append(args, fingerprint)
	for _, st := range states {
		args = append(args, string(st))
	}
	q := selectReview + ` WHERE fingerprint = ? AND state IN (?` + strings.Repeat(", ?", len(states)-1) + `)
		ORDER BY created_at DESC, rowid DESC LIMIT 1`
	r, err := scanReview(s.rdb.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		err = review.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: find review: %w", err)
	}
	return r, nil
}

// ListReviews returns the reviews matching f, newest first (by CreatedAt,
// then by insertion). Empty filter fields do not filter; set ones are
// combined with AND. f.Limit of 0 or less means 100, and it is capped at
// 1000. The result is never nil.
func (s *SQLite) ListReviews(ctx context.Context, f review.Filter) ([]*review.Review, error) {
	var where []string
	var args []any
	for _, c := range []struct{ col, val string }{
		{"state", string(f.State)}, {"subject", f.Subject}, {"target", f.Target},
	} {
		if c.val != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.val)
		}
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultReviewLimit
	}
	limit = min(limit, maxReviewLimit)

	q := selectReview
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_at DESC, rowid DESC LIMIT ?`
	args = append(args, limit)

	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list reviews: %w", err)
	}
	defer rows.Close()
	out := []*review.Review{}
	for rows.Next() {
		r, err := scanReview(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list reviews: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list reviews: %w", err)
	}
	return out, nil
}

// encodeReview checks r and returns its column values in reviewColumns
// order. It runs on the caller's goroutine, so the writer only executes.
func encodeReview(r *review.Review) ([]any, error) {
	if r == nil {
		return nil, errors.New("nil review")
	}
	switch {
	case r.ID == "":
		return nil, errors.New("review has no id")
	case r.State == "":
		return nil, fmt.Errorf("review %q has no state", r.ID)
	case r.CreatedAt.IsZero():
		return nil, fmt.Errorf("review %q has no created time", r.ID)
	case r.ExpiresAt.IsZero():
		return nil, fmt.Errorf("review %q has no expiry", r.ID)
	}
	fail := func(field string, err error) ([]any, error) {
		return nil, fmt.Errorf("review %q: %s: %w", r.ID, field, err)
	}

	groups := r.Groups
	if groups == nil {
		groups = []string{} // "[]", not "null"
	}
	if !allValidUTF8(groups) {
		// encoding/json would store U+FFFD instead; refuse rather than
		// store something other than what was asked.
		return fail("groups", errors.New("not valid UTF-8"))
	}
	groupsJSON, err := json.Marshal(groups)
	if err != nil {
		return fail("groups", err)
	}

	approvals := make([]storedApproval, 0, len(r.Approvals))
	for i, a := range r.Approvals {
		if !allValidUTF8([]string{a.By, a.Issuer, a.Comment}) {
			return fail(fmt.Sprintf("approval %d", i), errors.New("not valid UTF-8"))
		}
		ts, err := formatTime(a.Time)
		if err != nil {
			return fail(fmt.Sprintf("approval %d", i), err)
		}
		approvals = append(approvals, storedApproval{By: a.By, Issuer: a.Issuer, Comment: a.Comment, Time: ts})
	}
	approvalsJSON, err := json.Marshal(approvals)
	if err != nil {
		return fail("approvals", err)
	}

	times := make([]any, 0, 5)
	for _, t := range []struct {
		name string
		t    time.Time
	}{
		{"created_at", r.CreatedAt}, {"expires_at", r.ExpiresAt}, {"decided_at", r.DecidedAt},
		{"grant_expires", r.GrantExpires}, {"executed_at", r.ExecutedAt},
	} {
		v, err := formatTime(t.t)
		if err != nil {
			return fail(t.name, err)
		}
		if v == "" {
			times = append(times, nil) // NULL: not set
		} else {
			times = append(times, v)
		}
	}

	return []any{
		r.ID, string(r.State), r.Fingerprint,
		r.Subject, r.Issuer, string(groupsJSON), r.SessionID, r.Protocol, r.Target,
		r.Statement, r.Kind, r.ParamsHash, r.PolicyVersion, r.Policy, r.Rule, r.Reason,
		int64(r.MinApprovals), r.Approvers,
		string(approvalsJSON), r.DeniedBy, r.DenyComment,
		times[0], times[1], times[2], times[3], times[4], r.Result,
	}, nil
}

// formatTime returns t as stored: "" if zero, else timeLayout in UTC.
// Years outside 1-9999 are refused: they would not keep text order.
func formatTime(t time.Time) (string, error) {
	if t.IsZero() {
		return "", nil
	}
	t = t.UTC()
	if y := t.Year(); y < 1 || y > 9999 {
		return "", fmt.Errorf("time %v outside years 1-9999", t)
	}
	return t.Format(timeLayout), nil
}

// parseTime undoes formatTime.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// scanReview reads one row of selectReview.
func scanReview(row interface{ Scan(...any) error }) (*review.Review, error) {
	var (
		r                               review.Review
		state, groups, approvals        string
		minApprovals                    int64
		created, expires                string
		decided, grantExpires, executed sql.NullString
	)
	if err := row.Scan(
		&r.ID, &state, &r.Fingerprint,
		&r.Subject, &r.Issuer, &groups, &r.SessionID, &r.Protocol, &r.Target,
		&r.Statement, &r.Kind, &r.ParamsHash, &r.PolicyVersion, &r.Policy, &r.Rule, &r.Reason,
		&minApprovals, &r.Approvers,
		&approvals, &r.DeniedBy, &r.DenyComment,
		&created, &expires, &decided, &grantExpires, &executed, &r.Result,
	); err != nil {
		return nil, err
	}
	r.State = review.State(state)
	r.MinApprovals = int(minApprovals)
	fail := func(field string, err error) (*review.Review, error) {
		return nil, fmt.Errorf("review %q: %s: %w", r.ID, field, err)
	}

	if err := json.Unmarshal([]byte(groups), &r.Groups); err != nil {
		return fail("groups", err)
	}
	if len(r.Groups) == 0 {
		r.Groups = nil
	}
	var stored []storedApproval
	if err := json.Unmarshal([]byte(approvals), &stored); err != nil {
		return fail("approvals", err)
	}
	for i, a := range stored {
		t, err := parseTime(a.Time)
		if err != nil {
			return fail(fmt.Sprintf("approval %d", i), err)
		}
		r.Approvals = append(r.Approvals, review.Approval{By: a.By, Issuer: a.Issuer, Comment: a.Comment, Time: t})
	}

	for _, t := range []struct {
		name string
		s    string
		dst  *time.Time
	}{
		{"created_at", created, &r.CreatedAt}, {"expires_at", expires, &r.ExpiresAt},
		{"decided_at", decided.String, &r.DecidedAt}, {"grant_expires", grantExpires.String, &r.GrantExpires},
		{"executed_at", executed.String, &r.ExecutedAt},
	} {
		v, err := parseTime(t.s)
		if err != nil {
			return fail(t.name, err)
		}
		*t.dst = v
	}
	return &r, nil
}

// Compile-time check that SQLite persists reviews.
var _ review.Store = (*SQLite)(nil)
