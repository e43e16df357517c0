package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/identity/identitytest"
	"github.com/warden-gateway/warden/internal/pgtest"
)

var pg *pgtest.Server

func TestMain(m *testing.M) {
	var err error
	pg, err = pgtest.Start(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	conn, err := pgx.Connect(context.Background(), pg.AppURL())
	if err == nil {
		_, err = conn.Exec(context.Background(), `CREATE TABLE orders (id int PRIMARY KEY, amount int); INSERT INTO orders SELECT g, g FROM generate_series(1, 10) g`)
		conn.Close(context.Background())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		pg.Stop()
		os.Exit(1)
	}
	code := m.Run()
	pg.Stop()
	os.Exit(code)
}

type fixture struct {
	gw  *gateway.Gateway
	iss *identitytest.Issuer
}

func start(t *testing.T) *fixture {
	t.Helper()
	iss := identitytest.NewIssuer(t)
	dir := t.TempDir()
	yaml := fmt.Sprintf(`
listen: { postgres: 127.0.0.1:0, http: 127.0.0.1:0 }
store: sqlite://audit.db
identity:
  oidc: [{ issuer: %s, audience: warden }]
admins: '"sre" in groups'
targets:
  - { name: app, type: postgres, address: %s, database: %s, user: %s, password: %s, sslmode: disable }
policies:
  - name: readers
    when: '"analysts" in groups'
    allow:
      - target: app
        sql: { select: [public.orders] }
`, iss.URL, pg.Addr(), pgtest.AppDatabase, pgtest.AppUser, pgtest.AppPassword)
	path := filepath.Join(dir, "warden.yaml")
	os.WriteFile(path, []byte(yaml), 0o600)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(context.Background(), cfg, gateway.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	return &fixture{gw: gw, iss: iss}
}

func (f *fixture) token(t *testing.T, sub string, groups ...string) string {
	return f.iss.Token(t, sub, map[string]any{"groups": groups}, 10*time.Minute)
}

func (f *fixture) connect(t *testing.T, tok string) (*pgx.Conn, error) {
	port := f.gw.PostgresAddr().(*net.TCPAddr).Port
	return pgx.Connect(context.Background(), fmt.Sprintf("host=127.0.0.1 port=%d dbname=app user=x password=%s sslmode=disable", port, tok))
}

func (f *fixture) api(t *testing.T, method, path, tok string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+f.gw.HTTPAddr().String()+path, rd)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// /metrics parses as Prometheus text and carries warden's series.
func TestMetrics(t *testing.T) {
	f := start(t)
	c, err := f.connect(t, f.token(t, "agent-1", "analysts"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	c.Exec(context.Background(), "SELECT count(*) FROM orders")
	c.Exec(context.Background(), "DELETE FROM orders")
	f.connect(t, "garbage")

	resp, err := http.Get("http://" + f.gw.HTTPAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics do not parse as Prometheus text: %v", err)
	}
	value := func(name string, labels map[string]string) float64 {
		fam := fams[name]
		if fam == nil {
			t.Fatalf("no metric %s", name)
		}
	next:
		for _, m := range fam.Metric {
			for k, v := range labels {
				found := false
				for _, l := range m.Label {
					found = found || l.GetName() == k && l.GetValue() == v
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
		return 0
	}
	if v := value("warden_requests_total", map[string]string{"target": "app", "decision": "allow"}); v < 1 {
		t.Errorf("allowed requests = %v", v)
	}
	if v := value("warden_requests_total", map[string]string{"target": "app", "decision": "deny"}); v < 1 {
		t.Errorf("denied requests = %v", v)
	}
	if v := value("warden_sessions_active", map[string]string{"target": "app"}); v != 1 {
		t.Errorf("active sessions = %v", v)
	}
	if v := value("warden_token_verification_failures_total", map[string]string{"reason": "malformed"}); v != 1 {
		t.Errorf("malformed token failures = %v", v)
	}
	for _, name := range []string{"warden_audit_write_duration_seconds", "warden_decision_duration_seconds", "warden_audit_queue_depth", "warden_request_duration_seconds"} {
		if fams[name] == nil {
			t.Errorf("no metric %s", name)
		}
	}
}

// The offboarded contractor's job must stop: revoking a subject closes
// its open sessions within a second, refuses its next login, and survives
// a restart of the store. Only admins may do it.
func TestRevokeThroughAdminAPI(t *testing.T) {
	f := start(t)
	contractor := f.token(t, "contractor-7", "analysts")
	c, err := f.connect(t, contractor)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())

	// The agent itself cannot use the admin API.
	if code, body := f.api(t, "POST", "/api/v1/identities/contractor-7/revoke", contractor, nil); code != http.StatusForbidden {
		t.Fatalf("non-admin revoke: %d %v", code, body)
	}
	sre := f.token(t, "alice", "sre")
	code, body := f.api(t, "POST", "/api/v1/identities/contractor-7/revoke", sre, map[string]string{"reason": "offboarded"})
	if code != http.StatusOK || body["sessions_terminated"] != float64(1) {
		t.Fatalf("revoke: %d %v", code, body)
	}
	start := time.Now()
	var err2 error
	for time.Since(start) < 5*time.Second {
		if _, err2 = c.Exec(context.Background(), "SELECT 1"); err2 != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err2 == nil || time.Since(start) > time.Second {
		t.Fatalf("session still usable %v after revoke (err %v)", time.Since(start), err2)
	}
	_, err = f.connect(t, contractor)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "28P01" || !strings.Contains(pe.Message, "revoked") {
		t.Fatalf("login after revoke: %v", err)
	}
	// The audit log says who revoked whom.
	code, body = f.api(t, "GET", "/api/v1/audit?kind=admin&subject=alice", sre, nil)
	if code != http.StatusOK || !strings.Contains(fmt.Sprint(body["events"]), "contractor-7") {
		t.Fatalf("audit of the revoke: %d %v", code, body)
	}
	// Sessions list: the contractor is gone.
	code, body = f.api(t, "GET", "/api/v1/sessions", sre, nil)
	if code != http.StatusOK || strings.Contains(fmt.Sprint(body["sessions"]), "contractor-7") {
		t.Fatalf("sessions: %d %v", code, body)
	}
}

func TestKillSession(t *testing.T) {
	f := start(t)
	c, err := f.connect(t, f.token(t, "agent-1", "analysts"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	sre := f.token(t, "alice", "sre")
	_, body := f.api(t, "GET", "/api/v1/sessions", sre, nil)
	list, _ := body["sessions"].([]any)
	if len(list) != 1 {
		t.Fatalf("sessions: %v", body)
	}
	id := list[0].(map[string]any)["id"].(string)
	if code, body := f.api(t, "DELETE", "/api/v1/sessions/"+id, sre, nil); code != http.StatusOK {
		t.Fatalf("kill: %d %v", code, body)
	}
	if _, err := c.Exec(context.Background(), "SELECT 1"); err == nil {
		t.Fatal("killed session still usable")
	}
	if code, _ := f.api(t, "DELETE", "/api/v1/sessions/"+id, sre, nil); code != http.StatusNotFound {
		t.Fatalf("second kill: %d", code)
	}
}

func TestHealth(t *testing.T) {
	f := start(t)
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200} {
		resp, err := http.Get("http://" + f.gw.HTTPAddr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	// A store that cannot be written makes warden not ready.
	f.gw.Store.Close()
	resp, err := http.Get("http://" + f.gw.HTTPAddr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz with a closed store: %d", resp.StatusCode)
	}
}
