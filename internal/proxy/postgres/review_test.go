package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/review"
	"github.com/warden-gateway/warden/internal/store"
)

const reviewPolicy = `
policies:
  - name: ops
    when: '"ops" in groups'
    allow:
      - target: app
        sql: { select: [public.orders], insert: [public.orders] }
    review:
      - target: app
        sql: { delete: [public.orders] }
`

func newReviewEnv(t *testing.T, wait string) *env {
	t.Helper()
	return newEnvWith(t, reviewPolicy, "admins: '\"sre\" in groups'\nreviews: { wait: "+wait+" }\n")
}

// pendingReview waits (bounded) for subject's pending review.
func pendingReview(t *testing.T, e *env, subject string) *review.Review {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		rs, err := e.gw.Reviews.List(context.Background(), review.Filter{State: review.Pending, Subject: subject})
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) > 0 {
			return rs[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no pending review for %s", subject)
	return nil
}

func sre(name string) *identity.Principal {
	return &identity.Principal{Subject: name, Issuer: "test", Groups: []string{"sre"}, Claims: map[string]any{"groups": []any{"sre"}, "sub": name}}
}

func insertOrder(t *testing.T, id int) {
	t.Helper()
	if _, err := direct(t).Exec(context.Background(), "INSERT INTO orders (id, customer_id, amount, note) VALUES ($1, 1, 1, 'review test')", id); err != nil {
		t.Fatal(err)
	}
}

func exists(t *testing.T, id int) bool {
	return count(t, fmt.Sprintf("SELECT count(*) FROM orders WHERE id = %d", id)) == 1
}

// The story: a DELETE under review is held on its connection until a
// human approves it, then exactly that statement runs, once.
func TestReviewHeldUntilApprovedRunsOnce(t *testing.T) {
	e := newReviewEnv(t, "20s")
	ctx := context.Background()
	insertOrder(t, 910001)
	insertOrder(t, 910002)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		t.Run(mode.String(), func(t *testing.T) {
			c := e.connect(e.token("deploy-bot", "ops"))
			id := 910001
			if mode != pgx.QueryExecModeSimpleProtocol {
				id = 910002
			}
			done := make(chan error, 1)
			var tag string
			go func() {
				ct, err := c.Exec(ctx, "DELETE FROM orders WHERE id = $1", mode, id)
				tag = ct.String()
				done <- err
			}()
			r := pendingReview(t, e, "deploy-bot")
			if !strings.Contains(r.Statement, "DELETE FROM orders") || r.Rule != "ops/review[0]" {
				t.Fatalf("review: %+v", r)
			}
			if !exists(t, id) {
				t.Fatal("the held statement ran before approval")
			}
			// The requester cannot approve its own request.
			agent := &identity.Principal{Subject: "deploy-bot", Issuer: e.issuer.URL, Groups: []string{"sre"}}
			if _, err := e.gw.Reviews.Approve(ctx, r.ID, agent, "me"); err == nil {
				t.Fatal("self-approval accepted")
			}
			if _, err := e.gw.Reviews.Approve(ctx, r.ID, sre("alice"), "one row, fine"); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil || tag != "DELETE 1" {
					t.Fatalf("approved statement: %q, %v", tag, err)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("approved statement still held")
			}
			if exists(t, id) {
				t.Fatal("the approved DELETE did not delete the row")
			}
			// The approval is spent: the identical statement needs a new one.
			short, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			go func() {
				_, err := c.Exec(short, "DELETE FROM orders WHERE id = $1", mode, id)
				done <- err
			}()
			r2 := pendingReview(t, e, "deploy-bot")
			if r2.ID == r.ID {
				t.Fatal("a second execution rode on the first approval")
			}
			e.gw.Reviews.Deny(ctx, r2.ID, sre("alice"), "once is enough")
			if pe := pgErr(t, <-done); pe.Code != "42501" || !strings.Contains(pe.Message, r2.ID) || !strings.Contains(pe.Message, "denied") {
				t.Fatalf("denied review: %s %s", pe.Code, pe.Message)
			}
		})
	}
	// The audit log tells the story: proposed, approved (by whom), executed.
	evs, err := e.gw.Store.Query(ctx, store.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range evs {
		if strings.HasPrefix(ev.Kind, "review.") {
			kinds = append(kinds, ev.Kind+":"+ev.Subject)
		}
	}
	all := strings.Join(kinds, " ")
	for _, want := range []string{"review.proposed:deploy-bot", "review.approved:alice", "review.executed:deploy-bot", "review.denied:alice"} {
		if !strings.Contains(all, want) {
			t.Errorf("audit lacks %s; has %s", want, all)
		}
	}
}

// After the wait expires the client gets 42501 with the review id; once a
// human approves, re-running the identical statement runs it once; a
// different statement never rides on that approval.
func TestReviewExpiredWaitThenApproveRetry(t *testing.T) {
	e := newReviewEnv(t, "1s")
	ctx := context.Background()
	insertOrder(t, 920001)
	insertOrder(t, 920002)
	c := e.connect(e.token("cleanup-job", "ops"))
	_, err := c.Exec(ctx, "DELETE FROM orders WHERE id = 920001", pgx.QueryExecModeSimpleProtocol)
	pe := pgErr(t, err)
	if pe.Code != "42501" || !strings.Contains(pe.Message, "rv_") || !strings.Contains(pe.Message, "/reviews/rv_") {
		t.Fatalf("expired wait: %s %s (hint %s)", pe.Code, pe.Message, pe.Hint)
	}
	r := pendingReview(t, e, "cleanup-job")
	if !strings.Contains(pe.Message, r.ID) {
		t.Fatalf("message %q does not name review %s", pe.Message, r.ID)
	}
	// The agent itself gets 403 trying to approve through the API.
	req, _ := http.NewRequest("POST", "http://"+e.gw.HTTPAddr().String()+"/api/v1/reviews/"+r.ID+"/approve", nil)
	req.Header.Set("Authorization", "Bearer "+e.token("cleanup-job", "ops"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("agent approving its own review: %d", resp.StatusCode)
	}
	// An SRE approves through the API.
	req, _ = http.NewRequest("POST", "http://"+e.gw.HTTPAddr().String()+"/api/v1/reviews/"+r.ID+"/approve", strings.NewReader(`{"comment":"ok"}`))
	req.Header.Set("Authorization", "Bearer "+e.token("bob", "sre"))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got review.Review
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || got.State != review.Approved {
		t.Fatalf("approve through the API: %d %+v", resp.StatusCode, got)
	}
	// A different statement does not ride on it.
	_, err = c.Exec(ctx, "DELETE FROM orders WHERE id = 920002", pgx.QueryExecModeSimpleProtocol)
	if pe := pgErr(t, err); pe.Code != "42501" || !exists(t, 920002) {
		t.Fatalf("a different statement ran on another's approval: %v", err)
	}
	// The identical one runs, once.
	tag, err := c.Exec(ctx, "DELETE FROM orders WHERE id = 920001", pgx.QueryExecModeSimpleProtocol)
	if err != nil || tag.String() != "DELETE 1" || exists(t, 920001) {
		t.Fatalf("retry after approval: %v %v", tag, err)
	}
	insertOrder(t, 920001)
	if _, err := c.Exec(ctx, "DELETE FROM orders WHERE id = 920001", pgx.QueryExecModeSimpleProtocol); err == nil || !exists(t, 920001) {
		t.Fatal("an approval ran twice")
	}
	evs, _ := e.gw.Store.Query(ctx, store.Query{Kind: "review.approved"})
	if len(evs) != 1 || evs[0].Subject != "bob" {
		t.Fatalf("audit of the approval: %+v", evs)
	}
}

// A held statement keeps its transaction: approved, it runs inside it;
// denied, the transaction is aborted as PostgreSQL would abort it.
func TestReviewInTransaction(t *testing.T) {
	e := newReviewEnv(t, "20s")
	ctx := context.Background()
	insertOrder(t, 930001)
	c := e.connect(e.token("tx-bot", "ops"))
	if _, err := c.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "INSERT INTO orders (id, customer_id, amount) VALUES (930002, 1, 1)"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, "DELETE FROM orders WHERE id = 930001")
		done <- err
	}()
	r := pendingReview(t, e, "tx-bot")
	e.gw.Reviews.Deny(ctx, r.ID, sre("carol"), "not in this transaction")
	pgErr(t, <-done)
	if c.PgConn().TxStatus() != 'E' {
		t.Fatalf("transaction status after a denied review: %q", c.PgConn().TxStatus())
	}
	c.Exec(ctx, "ROLLBACK")
	if !exists(t, 930001) || exists(t, 930002) {
		t.Fatal("a denied review left part of its transaction applied")
	}
}

// Pending reviews survive a restart of warden: the waiting client is told
// to retry, and the approval still works for the retry.
func TestReviewSurvivesRestart(t *testing.T) {
	e := newReviewEnv(t, "30s")
	ctx := context.Background()
	insertOrder(t, 940001)
	tok := e.token("night-job", "ops")
	c := e.connect(tok)
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, "DELETE FROM orders WHERE id = 940001", pgx.QueryExecModeSimpleProtocol)
		done <- err
	}()
	r := pendingReview(t, e, "night-job")
	e.gw.Close()
	err := <-done
	if err == nil || !strings.Contains(err.Error(), r.ID) || !strings.Contains(err.Error(), "re-run") {
		t.Fatalf("client of a restarting warden: %v", err)
	}
	// warden comes back on the same store.
	gw2, err := gateway.New(ctx, e.cfg, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer gw2.Close()
	e.gw = gw2
	if got, err := gw2.Reviews.Get(ctx, r.ID); err != nil || got.State != review.Pending {
		t.Fatalf("review after restart: %+v %v", got, err)
	}
	if _, err := gw2.Reviews.Approve(ctx, r.ID, sre("dave"), "after the restart"); err != nil {
		t.Fatal(err)
	}
	c2 := e.connect(tok)
	tag, err := c2.Exec(ctx, "DELETE FROM orders WHERE id = 940001", pgx.QueryExecModeSimpleProtocol)
	if err != nil || tag.String() != "DELETE 1" || exists(t, 940001) {
		t.Fatalf("retry after restart and approval: %v %v", tag, err)
	}
}
