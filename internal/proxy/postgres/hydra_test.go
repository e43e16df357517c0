package postgres_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/identity/identitytest"
	"github.com/warden-gateway/warden/internal/store"
)

// The whole path with a real OpenID provider: an agent takes a
// client_credentials token from Ory Hydra and uses it, unchanged, as its
// psql password.
func TestHydraTokenThroughPsql(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Ory Hydra")
	}
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("psql not installed (make deps installs it)")
	}
	h := identitytest.StartHydra(t, identitytest.HydraBinary(t))
	client := h.CreateClient(t, "reporting-agent", "warden")
	tok := h.Token(t, client, "warden")
	e := newEnvIssuer(t, h.Public, `
policies:
  - name: hydra-readers
    when: 'sub == "`+client.ID+`"'
    allow:
      - target: app
        sql: { select: [public.orders] }
`, "")
	run := func(sql string) (string, error) {
		cmd := exec.Command(psql, "-X", "-A", "-t", "-h", "127.0.0.1", "-p", itoa(e.port()), "-U", "reporting-agent", "-d", "app", "-c", sql)
		cmd.Env = append(cmd.Environ(), "PGPASSWORD="+tok, "PGSSLMODE=disable")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("SELECT count(*) > 0 FROM orders"); err != nil || strings.TrimSpace(out) != "t" {
		evs, _ := e.gw.Store.Query(context.Background(), store.Query{})
		t.Fatalf("select with a Hydra token: %v\n%s\naudit: %+v", err, out, evs)
	}
	if out, _ := run("DELETE FROM orders"); !strings.Contains(out, "warden: permission denied") {
		t.Fatalf("delete with a Hydra token: %s", out)
	}
	evs, err := e.gw.Store.Query(context.Background(), store.Query{Kind: audit.KindStatement})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Subject != client.ID || evs[0].Issuer != h.Public || evs[1].Decision != audit.Deny {
		t.Fatalf("audit: %+v", evs)
	}
}
