package admin

import (
	"net/url"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/review"
	"github.com/warden-gateway/warden/internal/store"
)

// FuzzParseAuditRequest feeds arbitrary query strings to the audit query
// parser: it must never panic, every refusal must name a parameter, and
// what it accepts must be within bounds.
func FuzzParseAuditRequest(f *testing.F) {
	for _, s := range []string{
		"",
		"subject=agent-1&decision=deny&limit=5&order=desc&after=42",
		"since=1h&until=2024-05-01T00:00:00Z",
		"since=2024-05-01T00:00:00.123456789%2B02:00",
		"limit=99999999999999999999",
		"after=9223372036854775808",
		"since=-1ns",
		"q=%00%ff&session=%2F",
		"order=DESC",
		"a=1&a=2",
		"since=9999999h",
	} {
		f.Add(s)
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw string) {
		vals, err := url.ParseQuery(raw)
		if err != nil {
			return // net/http would have refused it too (r.URL.Query drops it)
		}
		ar, perr := parseAuditRequest(vals, now)
		if perr != nil {
			if perr.param == "" || perr.msg == "" {
				t.Fatalf("refusal without a parameter or message: %+v", perr)
			}
			if ar != nil {
				t.Fatalf("both a request and an error")
			}
			return
		}
		if ar.limit < 1 || ar.limit > store.MaxQueryLimit {
			t.Fatalf("limit %d out of bounds", ar.limit)
		}
		if ar.q.AfterID < 0 || ar.q.BeforeID < 0 || (ar.q.AfterID != 0 && ar.q.BeforeID != 0) {
			t.Fatalf("bad cursor: after %d before %d", ar.q.AfterID, ar.q.BeforeID)
		}
		if ar.q.BeforeID != 0 && !ar.q.Newest {
			t.Fatalf("backward cursor in ascending order")
		}
		if !ar.q.Since.IsZero() && !ar.q.Until.IsZero() && !ar.q.Since.Before(ar.q.Until) {
			t.Fatalf("since %v not before until %v", ar.q.Since, ar.q.Until)
		}
		for k := range vals {
			if !auditParams[k] {
				t.Fatalf("unknown parameter %q accepted", k)
			}
		}
	})
}

// FuzzParseReviewFilter feeds arbitrary query strings to the review list
// parser: it must never panic, every refusal must name a parameter, and
// what it accepts must be a known state within bounds.
func FuzzParseReviewFilter(f *testing.F) {
	for _, s := range []string{
		"",
		"state=any&subject=agent-1&target=prod-db&limit=5",
		"state=pending",
		"state=ANY",
		"limit=99999999999999999999",
		"limit=-1",
		"state=&state=",
		"=x",
		"subject=%00%ff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		vals, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		flt, perr := parseReviewFilter(vals)
		if perr != nil {
			if perr.param == "" || perr.msg == "" {
				t.Fatalf("refusal without a parameter or message: %+v", perr)
			}
			return
		}
		if flt.Limit < 1 || flt.Limit > MaxReviewLimit {
			t.Fatalf("limit %d out of bounds", flt.Limit)
		}
		switch flt.State {
		case "", review.Pending, review.Approved, review.Denied, review.Expired, review.Executed:
		default:
			t.Fatalf("unknown state %q accepted", flt.State)
		}
		if flt.State == "" && vals.Get("state") != stateAny {
			t.Fatalf("every state listed without state=any (state=%q)", vals.Get("state"))
		}
		for k := range vals {
			if !reviewParams[k] {
				t.Fatalf("unknown parameter %q accepted", k)
			}
		}
	})
}
