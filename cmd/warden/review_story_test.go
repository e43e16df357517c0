package main

import (
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/store"
)

// The approval story end to end with psql and the CLI: an agent's DELETE
// is held on its psql connection; an SRE lists the pending review, sees
// exactly what will run, approves it from the CLI; the DELETE runs once
// and psql prints its result; the audit log names the approver.
func TestReviewStoryPsqlAndCLI(t *testing.T) {
	psqlBin := needPostgres(t)
	f := startOpsGateway(t)
	host, port, _ := net.SplitHostPort(f.pgAddr)
	agentTok := f.token(t, "cleanup-agent", "ops")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	psql := exec.CommandContext(ctx, psqlBin, "-X", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", port, "-U", "cleanup-agent", "-d", "prod-db",
		"-c", "DELETE FROM orders WHERE id = 2")
	psql.Env = baseEnv("PGPASSWORD="+agentTok, "PGSSLMODE=disable")
	var out syncBuffer
	psql.Stdout, psql.Stderr = &out, &out
	if err := psql.Start(); err != nil {
		t.Fatal(err)
	}
	psqlDone := make(chan error, 1)
	go func() { psqlDone <- psql.Wait() }()

	// The SRE sees the pending review and exactly what will run.
	var id string
	deadline := time.Now().Add(20 * time.Second)
	for id == "" && time.Now().Before(deadline) {
		r := f.mustAdmin(t, "reviews", "list", "--json")
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			var rv struct {
				ID, Subject, Statement, Rule string
			}
			if json.Unmarshal([]byte(line), &rv) == nil && rv.Subject == "cleanup-agent" {
				if rv.Statement != "DELETE FROM orders WHERE id = 2" || rv.Rule != "ops-agents/review[0]" {
					t.Fatalf("pending review: %+v", rv)
				}
				id = rv.ID
			}
		}
		if id == "" {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if id == "" {
		t.Fatalf("no pending review appeared; psql said:\n%s", out.String())
	}
	if show := f.mustAdmin(t, "reviews", "show", id); !strings.Contains(show.stdout, "DELETE FROM orders WHERE id = 2") {
		t.Fatalf("reviews show:\n%s", show)
	}
	select {
	case err := <-psqlDone:
		t.Fatalf("psql returned before approval: %v\n%s", err, out.String())
	default:
	}
	// The agent cannot approve its own request.
	if r := f.warden(t, nil, "reviews", "approve", id, "--server", f.server, "--token", agentTok); r.code == 0 {
		t.Fatalf("the agent approved its own review:\n%s", r)
	}
	f.mustAdmin(t, "reviews", "approve", id, "--comment", "row 2 is a test order")
	select {
	case err := <-psqlDone:
		if err != nil || !strings.Contains(out.String(), "DELETE 1") {
			t.Fatalf("psql after approval: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("psql still held after approval:\n%s", out.String())
	}
	// review.executed is recorded once the statement's result is known,
	// after psql has it: wait for it, bounded.
	var evs []audit.Event
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var err error
		evs, err = f.gw.Store.Query(context.Background(), store.Query{Kinds: []string{"review.approved", "review.executed"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) >= 2 {
			break
		}
	}
	if len(evs) != 2 || evs[0].Subject != "ops-admin" || !strings.Contains(evs[1].Reason, "1 rows") {
		t.Fatalf("audit of the approval and execution: %+v", evs)
	}
}
