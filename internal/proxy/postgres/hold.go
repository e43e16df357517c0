package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/warden-gateway/warden/internal/policy"
	"github.com/warden-gateway/warden/internal/review"
)

// Reviewer is the approval service a held statement waits on
// (internal/review.Manager).
type Reviewer = review.Service

// hold puts a statement that policy marks for review before a human. An
// approved, unclaimed review of exactly this request (same identity,
// target, text, parameters and policy version) is claimed and the
// statement runs, once. Otherwise the statement waits on its connection
// (the client just sees a slow statement) up to ReviewWait; approved in
// time, it runs; denied, expired or still pending, the client gets 42501
// naming the review, and re-running the identical statement after
// approval runs it once. It returns the review that approved the
// statement, or the refusal to send.
func (ss *session) hold(rec record, kind string, d policy.Decision) (*review.Review, *pgproto3.ErrorResponse) {
	rv := ss.srv.cfg.Reviews
	if rv == nil {
		return nil, &pgproto3.ErrorResponse{Code: "42501",
			Message: "warden: held for review, but no review service is configured: refused (" + d.Message() + ")"}
	}
	req := review.Request{
		Principal:     ss.principal,
		SessionID:     ss.id,
		Protocol:      "postgres",
		Target:        ss.target.Name,
		Statement:     rec.text,
		Kind:          kind,
		ParamsHash:    rec.paramsHash,
		PolicyVersion: ss.subject.Version(),
		Policy:        d.Policy,
		Rule:          d.Rule,
		Reason:        d.Reason,
		MinApprovals:  d.MinApprovals,
		Approvers:     d.Approvers,
	}
	fp := review.Fingerprint(req)
	if r, ok, err := rv.Claim(ss.ctx, fp); err != nil {
		return nil, reviewUnavailable(err)
	} else if ok {
		return r, nil
	}
	// Everything the client sent before this statement runs now; only
	// this statement (and what follows it) waits.
	if err := ss.uw.Flush(); err != nil {
		return nil, reviewUnavailable(err)
	}
	r, err := rv.Request(ss.ctx, req)
	if err != nil {
		return nil, reviewUnavailable(err)
	}
	held := d
	held.Reason = fmt.Sprintf("review %s: %s", r.ID, d.Reason)
	ss.audit(rec, held, false)
	ss.held.Store(&r.ID)
	ctx, cancel := context.WithTimeout(ss.ctx, ss.srv.cfg.ReviewWait)
	got, err := rv.Wait(ctx, r.ID)
	cancel()
	ss.held.Store(nil)
	if got == nil {
		got = r
	}
	if got.State == review.Approved {
		if claimed, ok, err := rv.Claim(ss.ctx, fp); err == nil && ok {
			return claimed, nil
		}
		// Someone else with the same identity claimed it first.
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) && ss.ctx.Err() == nil {
		return nil, reviewUnavailable(err)
	}
	return nil, heldResponse(got, rv.URL(got.ID), d)
}

// heldResponse tells the client why its statement did not run and how to
// get it run.
func heldResponse(r *review.Review, url string, d policy.Decision) *pgproto3.ErrorResponse {
	e := &pgproto3.ErrorResponse{Code: "42501", Detail: fmt.Sprintf("statement held by %s: %s", d.Rule, oneLine(d.Reason))}
	switch r.State {
	case review.Denied:
		e.Message = fmt.Sprintf("warden: review %s denied by %s", r.ID, r.DeniedBy)
		if r.DenyComment != "" {
			e.Message += ": " + oneLine(r.DenyComment)
		}
	case review.Expired:
		e.Message = fmt.Sprintf("warden: review %s expired without a decision", r.ID)
		e.Hint = "re-run the statement to request a new review"
	default:
		e.Message = fmt.Sprintf("warden: held for review: review %s is %s; approve it at %s", r.ID, r.State, url)
		e.Hint = fmt.Sprintf("an approver runs `warden reviews approve %s`; then re-run the identical statement and it runs once", r.ID)
	}
	return e
}

func reviewUnavailable(err error) *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{Code: "58000",
		Message: "warden: the review service is unavailable; refusing a statement that needs approval (fail closed)"}
}

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// reviewDecision is the audit decision of a statement held for review.
const reviewDecision = "review"
