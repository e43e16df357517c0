package review_test

import (
	"regexp"
	"testing"

	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/review"
)

func TestFingerprint(t *testing.T) {
	base := baseReq
	base.ParamsHash = "p1"
	want := review.Fingerprint(base)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(want) {
		t.Fatalf("Fingerprint = %q, want 64 hex digits", want)
	}

	tests := []struct {
		name    string
		mutate  func(*review.Request)
		changes bool
	}{
		// Every bound field changes it.
		{"issuer", func(r *review.Request) { r.Principal = twin }, true},
		{"subject", func(r *review.Request) {
			r.Principal = &identity.Principal{Subject: "agent-2", Issuer: issuer, Groups: agent.Groups}
		}, true},
		{"protocol", func(r *review.Request) { r.Protocol = "http" }, true},
		{"target", func(r *review.Request) { r.Target = "staging-db" }, true},
		{"statement", func(r *review.Request) { r.Statement = "DELETE FROM public.orders WHERE id = 8" }, true},
		{"statement whitespace", func(r *review.Request) { r.Statement += " " }, true},
		{"statement case", func(r *review.Request) { r.Statement = "delete FROM public.orders WHERE id = 7" }, true},
		{"params", func(r *review.Request) { r.ParamsHash = "p2" }, true},
		{"no params", func(r *review.Request) { r.ParamsHash = "" }, true},
		{"policy version", func(r *review.Request) { r.PolicyVersion = "v2" }, true},
		// Field boundaries are unambiguous: moving bytes between
		// neighbouring fields changes it.
		{"boundary target/statement", func(r *review.Request) {
			r.Target, r.Statement = r.Target+r.Statement[:1], r.Statement[1:]
		}, true},
		{"boundary params/version", func(r *review.Request) {
			r.ParamsHash, r.PolicyVersion = r.ParamsHash+r.PolicyVersion, ""
		}, true},
		// A retry from a new connection (new session, new token, new
		// groups) must find the approval; display fields do not bind.
		{"session", func(r *review.Request) { r.SessionID = "sess-2" }, false},
		{"token and groups", func(r *review.Request) {
			r.Principal = &identity.Principal{Subject: agent.Subject, Issuer: agent.Issuer, Groups: []string{"other"}, TokenID: "tok-2"}
		}, false},
		{"kind, rule, reason, approvals", func(r *review.Request) {
			r.Kind, r.Policy, r.Rule, r.Reason, r.MinApprovals, r.Approvers = "x", "p", "r", "why", 3, "dba"
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base
			tt.mutate(&r)
			got := review.Fingerprint(r)
			if (got != want) != tt.changes {
				t.Errorf("fingerprint changed = %v, want %v", got != want, tt.changes)
			}
		})
	}
}
