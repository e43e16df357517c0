package main

// Tests of `warden reviews` (reviews.go) against a real admin API
// (internal/admin) on a loopback httptest server, with a real OIDC issuer
// (identitytest), the real policy engine's admins rule and a real SQLite
// audit store. Reviews are admintest.Reviews, an in-memory stand-in for
// review.Manager: no gateway or PostgreSQL is needed to approve from the
// CLI. The commands run in-process (reviewsCmd with cobra's SetArgs), and
// also through the built binary once `reviews` is wired into the root
// command.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/admin"
	"github.com/warden-gateway/warden/internal/admin/admintest"
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/identity/identitytest"
	"github.com/warden-gateway/warden/internal/policy"
	"github.com/warden-gateway/warden/internal/review"
	"github.com/warden-gateway/warden/internal/store"
)

// reviewsFixture is an admin API serving reviews, and tokens to call it.
type reviewsFixture struct {
	iss     *identitytest.Issuer
	reviews *admintest.Reviews
	store   *store.SQLite
	server  string // the API's base URL
	now     time.Time

	adminFile string // ops-admin, group sre: an admin
	agentFile string // agent-1, group analysts: requests reviews
	dbaFile   string // dba-1, group dba: approves rules naming "dba"
	tokens    []string
}

func startReviewsAPI(t *testing.T) *reviewsFixture {
	t.Helper()
	ctx := context.Background()
	f := &reviewsFixture{iss: identitytest.NewIssuer(t), now: time.Now()}
	auth, err := identity.NewOIDC(ctx, []config.OIDCIssuer{f.iss.Config}, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policy.Compile(&config.Config{Admins: `"sre" in claims.groups`})
	if err != nil {
		t.Fatal(err)
	}
	f.store, err = store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "audit.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.Close() })
	f.reviews = &admintest.Reviews{
		IsApprover: func(rv *review.Review, p *identity.Principal) bool {
			return engine.IsAdmin(p) || (rv.Approvers == "dba" && slices.Contains(p.Groups, "dba"))
		},
		ConsoleURL: "https://warden.example.com/console",
	}
	api, err := admin.New(admin.Config{
		Verifier: auth,
		IsAdmin:  engine.IsAdmin,
		Audit:    f.store,
		Reviews:  f.reviews,
		Record:   f.store,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	f.server = srv.URL
	f.adminFile = f.tokenFile(t, "ops-admin", "sre")
	f.agentFile = f.tokenFile(t, "agent-1", "analysts")
	f.dbaFile = f.tokenFile(t, "dba-1", "dba")
	return f
}

// tokenFile mints a token for sub in groups into a file; no output may
// ever contain the token.
func (f *reviewsFixture) tokenFile(t *testing.T, sub string, groups ...string) string {
	t.Helper()
	tok := f.iss.Token(t, sub, map[string]any{"groups": groups}, 10*time.Minute)
	f.tokens = append(f.tokens, tok)
	p := filepath.Join(t.TempDir(), sub+".token")
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// hold adds a pending review requested by agent-1 (or as mutated).
func (f *reviewsFixture) hold(id string, mutate ...func(*review.Review)) {
	rv := &review.Review{
		ID: id, State: review.Pending, Fingerprint: "fp-" + id,
		Subject: "agent-1", Issuer: f.iss.URL, Groups: []string{"analysts"}, SessionID: "pg-" + id,
		Protocol: "postgres", Target: "prod-db", Statement: "DELETE FROM orders WHERE id = 7", Kind: "delete",
		PolicyVersion: "v1", Policy: "analyst-agents", Rule: "analyst-agents/review[0]",
		Reason: "deletes in prod-db need a human", CreatedAt: f.now.Add(-5 * time.Minute), ExpiresAt: f.now.Add(10 * time.Minute),
	}
	for _, m := range mutate {
		m(rv)
	}
	f.reviews.Add(rv)
}

// run runs `warden reviews ARGS --server S --token-file TOKFILE`
// in-process, bounded by cmdTimeout.
func (f *reviewsFixture) run(t *testing.T, tokFile string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := reviewsCmd()
	// As the root command sets for every subcommand (main.go).
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(strings.NewReader(""))
	cmd.SetArgs(append(args, "--server", f.server, "--token-file", tokFile))
	err = cmd.ExecuteContext(ctx)
	for _, tok := range f.tokens {
		if strings.Contains(out.String()+errOut.String(), tok) || (err != nil && strings.Contains(err.Error(), tok)) {
			t.Errorf("warden reviews %s printed an access token", strings.Join(args, " "))
		}
	}
	return out.String(), errOut.String(), err
}

// mustRun is run, failing the test on an error.
func (f *reviewsFixture) mustRun(t *testing.T, tokFile string, args ...string) string {
	t.Helper()
	out, errOut, err := f.run(t, tokFile, args...)
	if err != nil {
		t.Fatalf("warden reviews %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

func TestReviewsList(t *testing.T) {
	f := startReviewsAPI(t)
	if out := f.mustRun(t, f.adminFile, "list"); out != "no pending reviews\n" {
		t.Errorf("empty list: %q", out)
	}
	long := "DELETE FROM orders WHERE id IN (" + strings.Repeat("1, ", 40) + "2)"
	f.hold("r1")
	f.hold("r2", func(rv *review.Review) {
		rv.Subject, rv.Target, rv.Statement = "agent-2", "billing-db", "UPDATE invoices\n\tSET paid = true"
		rv.CreatedAt = f.now.Add(-3 * time.Hour)
		rv.MinApprovals = 2
	})
	f.hold("r3", func(rv *review.Review) { rv.State, rv.CreatedAt = review.Approved, f.now.Add(-72*time.Hour) })
	f.hold("r4", func(rv *review.Review) {
		rv.Statement = long
		rv.CreatedAt = f.now.Add(-20 * time.Second)
	})
	f.hold("r5", func(rv *review.Review) {
		rv.Statement, rv.CreatedAt = "SELECT '\x1b]0;owned\x07'", f.now.Add(-10*time.Second)
		rv.State = review.Denied
	})

	out := f.mustRun(t, f.adminFile, "list")
	wantOutput(t, "reviews list", out,
		`^ID\s+STATE\s+SUBJECT\s+TARGET\s+RULE\s+STATEMENT\s+AGE$`,
		`^r2\s+pending 0/2\s+agent-2\s+billing-db\s+analyst-agents/review\[0\]\s+UPDATE invoices SET paid = true\s+3h$`,
		`^r1\s+pending\s+agent-1\s+prod-db\s+analyst-agents/review\[0\]\s+DELETE FROM orders WHERE id = 7\s+5m$`,
		`^r4\s+pending\s+agent-1\s+prod-db\s+\S+\s+DELETE FROM orders WHERE id IN \(1, 1, [1, ]*…\s+\d+s$`,
	)
	if strings.Contains(out, "r3") || strings.Contains(out, "r5") || strings.Count(out, "\n") != 4 {
		t.Errorf("the default list is not the pending reviews:\n%s", out)
	}

	out = f.mustRun(t, f.adminFile, "list", "--state", "any")
	wantOutput(t, "reviews list --state any", out,
		`^r3\s+approved\s+agent-1\s+.*\s+3d$`,
		// An escape sequence in a statement does not reach the terminal.
		`^r5\s+denied\s+.*SELECT '\\x1b\]0;owned\\x07'\s+\d+s$`,
	)
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Errorf("control characters reached the terminal: %q", out)
	}

	out = f.mustRun(t, f.adminFile, "list", "--state", "any", "--target", "billing-db", "--json")
	var got []admin.ReviewView
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var v admin.ReviewView
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("not a JSON line: %q: %v", l, err)
		}
		got = append(got, v)
	}
	if len(got) != 1 || got[0].ID != "r2" || got[0].Statement != "UPDATE invoices\n\tSET paid = true" ||
		got[0].URL != "https://warden.example.com/console/reviews/r2" || got[0].MinApprovals != 2 {
		t.Errorf("--json: %s", out)
	}

	if out := f.mustRun(t, f.adminFile, "list", "--state", "executed"); out != "no executed reviews\n" {
		t.Errorf("no executed reviews: %q", out)
	}
	if out := f.mustRun(t, f.adminFile, "list", "--state", "any", "--subject", "agent-1", "--limit", "1"); strings.Count(out, "\n") != 2 {
		t.Errorf("--limit 1 --subject agent-1:\n%s", out)
	}

	t.Run("bad flags", func(t *testing.T) {
		for _, args := range [][]string{{"list", "--state", "open"}, {"list", "--limit", "0"}} {
			if _, _, err := f.run(t, f.adminFile, args...); err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(args[1], "--")) {
				t.Errorf("%v: err = %v, want one naming the flag", args, err)
			}
		}
	})
	t.Run("admins only", func(t *testing.T) {
		_, _, err := f.run(t, f.dbaFile, "list")
		if err == nil || !strings.HasPrefix(err.Error(), "403 forbidden: dba-1 is not an administrator") {
			t.Errorf("an approver listing: err = %v, want the API's 403", err)
		}
	})
}

func TestReviewsShow(t *testing.T) {
	f := startReviewsAPI(t)
	f.hold("r1", func(rv *review.Review) {
		rv.Statement = "DELETE FROM orders\n\tWHERE id = 7"
		rv.ParamsHash = "9f86d081884c7d65"
		rv.MinApprovals = 2
		rv.Approvers = "dba"
	})
	f.mustRun(t, f.dbaFile, "approve", "r1", "--comment", "one row \u202e; checked")

	out := f.mustRun(t, f.adminFile, "show", "r1")
	wantOutput(t, "reviews show", out,
		`^ID:\s+r1$`,
		`^State:\s+pending \(1 of 2 approvals\)$`,
		`^Requested by:\s+agent-1 \(issuer http://127\.0\.0\.1:\d+\S*\)$`,
		`^Groups:\s+analysts$`,
		`^Session:\s+pg-r1 \(postgres\)$`,
		`^Target:\s+prod-db$`,
		`^Kind:\s+delete$`,
		`^Rule:\s+analyst-agents/review\[0\] \(policy analyst-agents\)$`,
		`^Reason:\s+deletes in prod-db need a human$`,
		`^Approvers:\s+dba$`,
		`^Statement:\n    DELETE FROM orders\n        WHERE id = 7\n`,
		`^Params hash:\s+9f86d081884c7d65$`,
		`^Fingerprint:\s+fp-r1$`,
		`^Policy version:\s+v1$`,
		`^Created:\s+\S+Z \(5m\d+s ago\)$`,
		`^Expires:\s+\S+Z \(in \d+m\d+s\)$`,
		`^Approvals:\n  - dba-1 \(issuer \S+\) at \S+Z: "one row \\u202e; checked"$`,
		`^Console:\s+https://warden\.example\.com/console/reviews/r1$`,
	)
	if strings.Contains(out, "\u202e") {
		t.Errorf("a bidi override reached the terminal:\n%s", out)
	}

	out = f.mustRun(t, f.adminFile, "show", "r1", "--json")
	var v admin.ReviewView
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Review == nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if v.ID != "r1" || v.Statement != "DELETE FROM orders\n\tWHERE id = 7" || len(v.Approvals) != 1 || v.Approvals[0].By != "dba-1" || v.URL == "" {
		t.Errorf("--json: %+v", v.Review)
	}

	t.Run("the requester shows its own review", func(t *testing.T) {
		out := f.mustRun(t, f.agentFile, "show", "r1")
		wantOutput(t, "requester's show", out, `^State:\s+pending \(1 of 2 approvals\)$`)
	})
	t.Run("denied", func(t *testing.T) {
		f.hold("r2")
		f.mustRun(t, f.adminFile, "deny", "r2", "--comment", "add a LIMIT")
		out := f.mustRun(t, f.agentFile, "show", "r2")
		wantOutput(t, "show of a denied review", out,
			`^State:\s+denied$`, `^Decided:\s+\S+Z \(\d+s ago\)$`, `^Denied by:\s+ops-admin: "add a LIMIT"$`)
		if strings.Contains(out, "Expires:") {
			t.Errorf("a decided review shows its decision deadline:\n%s", out)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		for _, tt := range []struct {
			tokFile, id, want string
		}{
			{f.adminFile, "nope", `404 not_found: no review "nope"`},
			{f.dbaFile, "r1", "403 forbidden: dba-1 is neither an administrator nor the requester of this review"},
		} {
			if _, _, err := f.run(t, tt.tokFile, "show", tt.id); err == nil || err.Error() != tt.want {
				t.Errorf("show %s: err = %v, want %q", tt.id, err, tt.want)
			}
		}
	})
}

func TestReviewsApproveDeny(t *testing.T) {
	f := startReviewsAPI(t)
	f.hold("r1")
	f.hold("r2", func(rv *review.Review) { rv.Approvers = "dba" })
	f.hold("r3", func(rv *review.Review) { rv.MinApprovals = 2; rv.Approvers = "dba" })
	f.hold("ci/7")

	steps := []struct {
		name    string
		tokFile string
		args    []string
		wantOut string // exit 0 with this output
		wantErr string // or this error
	}{
		{"admin approves", f.adminFile, []string{"approve", "r1", "--comment", "checked: one row"}, "review r1: approved\n", ""},
		{"again", f.adminFile, []string{"approve", "r1"}, "", `409 conflict: review "r1" is no longer pending: it was decided, expired or executed`},
		{"the requester approves its own", f.agentFile, []string{"approve", "r2", "--comment", "trust me"}, "", `403 self_approval: you requested review "r2": someone else must approve it`},
		{"the requester denies its own", f.agentFile, []string{"deny", "r2"}, "", `403 self_approval: you requested review "r2": someone else must deny it`},
		{"the rule's approver denies", f.dbaFile, []string{"deny", "r2", "--comment", "use a WHERE clause"}, "review r2: denied\n", ""},
		{"an approver of another rule", f.dbaFile, []string{"approve", "ci/7"}, "", `403 forbidden: you are not an approver of review "ci/7"`},
		{"first of two", f.dbaFile, []string{"approve", "r3"}, "review r3: pending (1 of 2 approvals)\n", ""},
		{"same approver twice", f.dbaFile, []string{"approve", "r3"}, "", `409 duplicate: you have already approved review "r3"; it needs another approver`},
		{"second of two", f.adminFile, []string{"approve", "r3"}, "review r3: approved (2 of 2 approvals)\n", ""},
		{"an id with a slash", f.adminFile, []string{"approve", "ci/7"}, "review ci/7: approved\n", ""},
		{"unknown", f.adminFile, []string{"deny", "nope"}, "", `404 not_found: no review "nope"`},
	}
	for _, st := range steps {
		out, _, err := f.run(t, st.tokFile, st.args...)
		switch {
		case st.wantErr == "" && (err != nil || out != st.wantOut):
			t.Errorf("%s: out %q, err %v; want out %q", st.name, out, err, st.wantOut)
		case st.wantErr != "" && (err == nil || err.Error() != st.wantErr || out != ""):
			t.Errorf("%s: out %q, err %v; want err %q", st.name, out, err, st.wantErr)
		}
	}
	calls := f.reviews.Calls()
	call := func(verb, id, by, comment string) admintest.Call {
		return admintest.Call{Verb: verb, ID: id, By: by, Comment: comment}
	}
	want := []admintest.Call{
		call("approve", "r1", "ops-admin", "checked: one row"),
		call("approve", "r1", "ops-admin", ""),
		call("approve", "r2", "agent-1", "trust me"),
		call("deny", "r2", "agent-1", ""),
		call("deny", "r2", "dba-1", "use a WHERE clause"),
		call("approve", "ci/7", "dba-1", ""),
		call("approve", "r3", "dba-1", ""),
		call("approve", "r3", "dba-1", ""),
		call("approve", "r3", "ops-admin", ""),
		call("approve", "ci/7", "ops-admin", ""),
		call("deny", "nope", "ops-admin", ""),
	}
	if !slices.Equal(calls, want) {
		t.Errorf("decisions the gateway was asked for:\n%+v\nwant\n%+v", calls, want)
	}

	t.Run("every attempt is in the audit log", func(t *testing.T) {
		evs, err := f.store.Query(context.Background(), store.Query{Kind: "admin", Limit: store.MaxQueryLimit})
		if err != nil {
			t.Fatal(err)
		}
		var attempts int
		for _, ev := range evs {
			if ev.Decision == "allow" && strings.HasPrefix(ev.Request, "POST /api/v1/reviews/") {
				attempts++
			}
		}
		if attempts != len(want) {
			t.Errorf("%d attempts recorded, want %d: %+v", attempts, len(want), evs)
		}
	})
	t.Run("a long comment is refused before asking", func(t *testing.T) {
		_, _, err := f.run(t, f.adminFile, "deny", "r1", "--comment", strings.Repeat("x", admin.MaxCommentBytes+1))
		if err == nil || !strings.Contains(err.Error(), "--comment") {
			t.Errorf("err = %v", err)
		}
		if n := len(f.reviews.Calls()); n != len(want) {
			t.Errorf("the gateway was asked anyway")
		}
	})
}

func TestReviewsEnvironment(t *testing.T) {
	f := startReviewsAPI(t)
	f.hold("r1")
	tok, err := os.ReadFile(f.adminFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("WARDEN_SERVER", f.server)
	t.Setenv("WARDEN_TOKEN", strings.TrimSpace(string(tok)))
	cmd := reviewsCmd()
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"list"})
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatalf("list with WARDEN_SERVER and WARDEN_TOKEN: %v\n%s", err, out.String())
	}
	wantOutput(t, "list", out.String(), `^r1\s+pending\s+agent-1`)

	t.Setenv("WARDEN_TOKEN", "")
	cmd = reviewsCmd()
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"approve", "r1"})
	if err := cmd.ExecuteContext(ctx); err == nil || !strings.Contains(err.Error(), "no admin token") {
		t.Errorf("no token: err = %v", err)
	}
	if calls := f.reviews.Calls(); len(calls) != 0 {
		t.Errorf("decided without a token: %+v", calls)
	}
}

// TestReviewsBinary runs the commands through the built binary: exit
// codes and the "warden: <status> <code>: <message>" line. It needs
// `reviews` in the root command (main.go), and skips until then.
func TestReviewsBinary(t *testing.T) {
	if r := warden(t, nil, "reviews", "--help"); r.code != 0 || !strings.Contains(r.stdout, "approve") {
		t.Skip("`warden reviews` is not wired into the root command yet")
	}
	f := startReviewsAPI(t)
	f.hold("r1")
	run := func(tokFile string, args ...string) result {
		t.Helper()
		r := warden(t, nil, append(args, "--server", f.server, "--token-file", tokFile)...)
		for _, tok := range f.tokens {
			if strings.Contains(r.stdout+r.stderr, tok) {
				t.Errorf("warden %s printed an access token", strings.Join(args, " "))
			}
		}
		return r
	}
	r := run(f.agentFile, "reviews", "approve", "r1")
	if r.code != 1 || r.stdout != "" || strings.TrimSpace(r.stderr) != `warden: 403 self_approval: you requested review "r1": someone else must approve it` {
		t.Errorf("self-approval: want exit 1 with the API's message:\n%s", r)
	}
	r = run(f.adminFile, "reviews", "approve", "r1", "--comment", "ok")
	if r.code != 0 || r.stdout != "review r1: approved\n" {
		t.Errorf("approve: want exit 0:\n%s", r)
	}
	r = run(f.adminFile, "reviews", "list", "--state", "approved")
	if r.code != 0 {
		t.Fatalf("list: %s", r)
	}
	wantOutput(t, "list", r.stdout, `^r1\s+approved\s+agent-1\s+prod-db`)
	r = run(f.adminFile, "reviews", "deny", "r1")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "warden: 409 conflict: ") {
		t.Errorf("deny after approval: want exit 1, 409:\n%s", r)
	}
}
