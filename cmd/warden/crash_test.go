package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warden-gateway/warden/internal/pgtest"
)

// kill -9 of warden during a burst of statements loses no acknowledged
// record: every statement whose result reached a client is in the audit
// log after the crash, and the hash chain still verifies.
func TestKill9LosesNoAcknowledgedRecord(t *testing.T) {
	needPostgres(t)
	pg := startPostgres(t)
	{
		conn, err := pgx.Connect(context.Background(), pg.AppURL())
		if err != nil {
			t.Fatal(err)
		}
		_, err = conn.Exec(context.Background(), `CREATE TABLE orders (id int PRIMARY KEY, amount int); INSERT INTO orders VALUES (1, 1)`)
		conn.Close(context.Background())
		if err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	iss := startDevIssuer(t, filepath.Join(dir, "dev.pem"))
	pgAddr, httpAddr := freeAddr(t), freeAddr(t)
	cfg := writeConfig(t, dir, configParams{PGListen: pgAddr, HTTPListen: httpAddr, Issuer: iss.URL, DBAddr: pg.Addr()})
	env := []string{"T_DB_PW=" + pgtest.AppPassword}
	w := startWarden(t, env, "serve", "--config", cfg)
	w.waitListening(t, pgAddr)
	tok := iss.mint(t, "--sub", "agent-1", "--claim", "groups=analysts")
	host, port, _ := net.SplitHostPort(pgAddr)

	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%s dbname=prod-db user=agent-1 password=%s sslmode=disable", host, port, tok))
			if err != nil {
				t.Errorf("connect: %v", err)
				return
			}
			defer c.Close(context.Background())
			mode := pgx.QueryExecModeSimpleProtocol
			if g%2 == 1 {
				mode = pgx.QueryExecModeExec // extended protocol: audited at Execute
			}
			for i := 0; i < 100000; i++ {
				marker := fmt.Sprintf("ack-%d-%d", g, i)
				var got string
				if err := c.QueryRow(ctx, "SELECT '"+marker+"' FROM orders WHERE id = 1", mode).Scan(&got); err != nil {
					return // warden died
				}
				mu.Lock()
				acked = append(acked, marker)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(700 * time.Millisecond)
	if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-w.done
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 100 {
		t.Fatalf("only %d statements acknowledged before the kill; the burst did not get going", len(acked))
	}

	// Read the log back through warden itself (the durable record is the
	// audit journal; opening the store replays what the index had not
	// caught up with when the process died).
	if r := warden(t, env, "audit", "verify", "--config", cfg); r.code != 0 {
		t.Fatalf("audit verify after kill -9: %s", r)
	}
	r := warden(t, env, "audit", "export", "--config", cfg)
	if r.code != 0 {
		t.Fatalf("audit export after kill -9: %s", r)
	}
	stored := map[string]bool{}
	for _, line := range strings.Split(r.stdout, "\n") {
		var ev struct{ Kind, Decision, Request string }
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Kind == "statement" && ev.Decision == "allow" {
			stored[ev.Request] = true
		}
	}
	lost := 0
	for _, m := range acked {
		if !stored["SELECT '"+m+"' FROM orders WHERE id = 1"] {
			lost++
			if lost < 5 {
				t.Errorf("acknowledged statement %s has no audit record", m)
			}
		}
	}
	t.Logf("%d statements acknowledged before kill -9, %d records stored, %d lost", len(acked), len(stored), lost)
	if lost > 0 {
		t.Fatalf("%d acknowledged statements lost", lost)
	}
}
