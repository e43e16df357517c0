package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/devtls"
	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/pgtest"
	"github.com/warden-gateway/warden/internal/store"
)

const demoSchema = `
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text, ssn text);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers(id), amount numeric(10,2), created_at timestamptz DEFAULT now());
CREATE TABLE secrets (id serial PRIMARY KEY, value text);
INSERT INTO customers (name, email, ssn) VALUES ('Ada', 'ada@example.com', '123-45-6789'), ('Grace', 'grace@example.com', '987-65-4321');
INSERT INTO orders (customer_id, amount) SELECT 1 + (g % 2), g * 10 FROM generate_series(1, 20) g;
INSERT INTO secrets (value) VALUES ('the launch codes');
`

const demoConfig = `# Written by 'warden demo'. A complete, working configuration.
listen:
  postgres: %s
  http: %s
tls: { cert: server.crt, key: server.key }   # self-signed by the demo
store: sqlite://audit.db
reviews: { wait: 3s }   # how long a held request waits for a human before it is refused with the review id
identity:
  oidc:
    - issuer: %s          # warden's development issuer (warden token)
      audience: warden
      groups_claim: groups
targets:
  - name: prod-db
    type: postgres
    address: %s
    database: %s
    user: %s
    password: ${WARDEN_DEMO_DB_PASSWORD}
    sslmode: disable
  - name: billing                 # an internal HTTP API (the demo serves one on loopback)
    type: http
    url: http://%s
    headers: { Authorization: "Bearer ${WARDEN_DEMO_BILLING_KEY}" }   # the service's key: agents never see it
policies:
  - name: analyst-agents
    when: '"analysts" in claims.groups'
    allow:
      - target: prod-db
        sql: { select: [public.orders, public.customers] }
      - target: billing
        http: [{ methods: [GET], paths: ["/v1/invoices/**"] }]
    review:
      - target: billing
        http: [{ methods: [POST], paths: ["/v1/refunds"] }]
    mask:
      - target: billing
        fields: [customer.email]
`

func demoCmd() *cobra.Command {
	var (
		dir, listenPG, listenHTTP, issuerAddr string
		tour                                  bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a self-contained demonstration (dev issuer, embedded store, throwaway PostgreSQL)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			ctx := cmd.Context()
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if dir == "" {
				dir, err = os.MkdirTemp("", "warden-demo-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
			}
			// 1. The development issuer: discovery + JWKS on loopback.
			keyPath := filepath.Join(dir, "dev-issuer.pem")
			dev, err := identity.LoadOrCreateDevKey(keyPath)
			if err != nil {
				return err
			}
			iln, err := listenOrAny(issuerAddr)
			if err != nil {
				return fmt.Errorf("demo: issuer listener: %w", err)
			}
			issuerURL := "http://" + iln.Addr().String()
			isrv := &http.Server{Handler: dev.Handler(issuerURL), ReadHeaderTimeout: 5 * time.Second}
			go isrv.Serve(iln)
			defer isrv.Close()

			// 2. A throwaway PostgreSQL with a small schema.
			fmt.Fprintln(out, "==> starting a throwaway PostgreSQL (initdb + pg_ctl)")
			pg, err := pgtest.Start(ctx)
			if err != nil {
				return fmt.Errorf("demo needs PostgreSQL's server binaries (make deps installs them): %w", err)
			}
			defer pg.Stop()
			conn, err := pgx.Connect(ctx, pg.AppURL())
			if err != nil {
				return err
			}
			if _, err := conn.Exec(ctx, demoSchema, pgx.QueryExecModeSimpleProtocol); err != nil {
				conn.Close(ctx)
				return fmt.Errorf("demo schema: %w", err)
			}
			conn.Close(ctx)

			// 3. An internal billing API warden fronts: it demands its own
			// key and echoes what it was sent.
			billingKey := randomHex(16)
			bln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			bsrv := &http.Server{Handler: demoBilling(billingKey), ReadHeaderTimeout: 5 * time.Second}
			go bsrv.Serve(bln)
			defer bsrv.Close()
			os.Setenv("WARDEN_DEMO_BILLING_KEY", billingKey)

			// 4. warden itself, on a config written to disk.
			pgln, err := listenOrAny(listenPG)
			if err != nil {
				return err
			}
			pgAddr := pgln.Addr().String()
			pgln.Close()
			hln, err := listenOrAny(listenHTTP)
			if err != nil {
				return err
			}
			httpAddr := hln.Addr().String()
			hln.Close()
			if _, _, err := devtls.SelfSigned(dir, "127.0.0.1", "localhost"); err != nil {
				return err
			}
			cfgPath := filepath.Join(dir, "warden.yaml")
			yaml := fmt.Sprintf(demoConfig, pgAddr, httpAddr, issuerURL, pg.Addr(), pgtest.AppDatabase, pgtest.AppUser, bln.Addr().String())
			if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
				return err
			}
			os.Setenv("WARDEN_DEMO_DB_PASSWORD", pgtest.AppPassword)
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			gw, err := gateway.New(ctx, cfg, gateway.Options{Logger: log})
			if err != nil {
				return err
			}
			defer gw.Close()
			host, port, _ := net.SplitHostPort(pgAddr)
			tok, err := dev.Mint(issuerURL, "warden", "agent-1", map[string]any{"groups": []string{"analysts"}}, time.Hour)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "==> warden is listening for PostgreSQL clients on %s (config: %s)\n\n", pgAddr, cfgPath)
			self, _ := os.Executable()
			fmt.Fprintf(out, "Try it (an analyst agent may SELECT orders and customers, nothing else):\n\n")
			fmt.Fprintf(out, "  export PGPASSWORD=$(%s token --issuer-key %s --issuer %s --sub agent-1 --claim groups=analysts)\n", self, keyPath, issuerURL)
			fmt.Fprintf(out, "  psql \"host=%s port=%s dbname=prod-db user=agent-1 sslmode=require\"\n\n", host, port)
			fmt.Fprintf(out, "  SELECT count(*) FROM orders;        -- allowed\n  DELETE FROM orders;                 -- refused: 42501, names the rule\n  SELECT * FROM secrets;              -- refused\n\n")
			fmt.Fprintf(out, "and the billing API through warden (the agent's token in, the service's key out):\n\n")
			fmt.Fprintf(out, "  curl --cacert %s -H \"Authorization: Bearer $PGPASSWORD\" https://%s/t/billing/v1/invoices/7\n\n",
				filepath.Join(dir, "server.crt"), httpAddr)
			if tour {
				if err := runTour(ctx, out, host, port, tok, gw); err != nil {
					return err
				}
				return runHTTPTour(ctx, out, filepath.Join(dir, "server.crt"), httpAddr, tok, gw)
			}
			fmt.Fprintln(out, "Press Ctrl-C to stop.")
			<-ctx.Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "keep the demo's files (config, key, audit.db) here instead of a temporary directory")
	cmd.Flags().StringVar(&listenPG, "listen", "127.0.0.1:6432", "PostgreSQL listener (a free port is used if busy)")
	cmd.Flags().StringVar(&listenHTTP, "listen-http", "127.0.0.1:8080", "HTTP listener (a free port is used if busy)")
	cmd.Flags().StringVar(&issuerAddr, "issuer-listen", strings.TrimPrefix(defaultDevIssuer, "http://"), "development issuer listener (a free port is used if busy)")
	cmd.Flags().BoolVar(&tour, "tour", false, "run a scripted tour with psql, print the audit log, and exit")
	return cmd
}

// listenOrAny listens on addr, or on a free loopback port if addr is busy.
func listenOrAny(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err == nil {
		return l, nil
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

func runTour(ctx context.Context, out interface{ Write([]byte) (int, error) }, host, port, tok string, gw *gateway.Gateway) error {
	psql, err := exec.LookPath("psql")
	if err != nil {
		return errors.New("tour: psql not found (make deps installs it)")
	}
	steps := []struct {
		what, sql string
		oneQuery  bool // send as one query string (psql -c), not statement by statement
	}{
		{"an allowed read", "SELECT count(*) AS orders, sum(amount) AS total FROM orders;", false},
		{"a DELETE the policy does not allow", "DELETE FROM orders;", false},
		{"a read of a table outside the policy, hidden in a subquery", "SELECT (SELECT value FROM secrets LIMIT 1) AS leak, count(*) FROM orders;", false},
		{"a trick that fools regex guardrails, sent as one query string: refused whole", "SELECT 'harmless'; /* ; */ DROP TABLE customers;", true},
		{"privilege tricks are refused whatever the policy says", "SET ROLE postgres;", false},
		{"a refusal inside a transaction aborts it exactly as PostgreSQL would (COMMIT rolls back)", "BEGIN;\nSELECT count(*) FROM orders;\nDELETE FROM customers;\nSELECT 1;\nCOMMIT;\nSELECT count(*) AS orders_still_there FROM orders;", false},
	}
	for _, s := range steps {
		fmt.Fprintf(out, "--- %s\n", s.what)
		for _, line := range strings.Split(s.sql, "\n") {
			fmt.Fprintf(out, "prod-db=> %s\n", line)
		}
		// psql over TLS, one session per step, reading the statements from
		// stdin like a person typing them. stdbuf keeps its output and its
		// errors in order.
		args := []string{"-X", "-v", "ON_ERROR_STOP=0", "-h", host, "-p", port, "-U", "agent-1", "-d", "prod-db"}
		if s.oneQuery {
			args = append(args, "-c", s.sql)
		}
		name := psql
		if sb, err := exec.LookPath("stdbuf"); err == nil {
			name, args = sb, append([]string{"-oL", "-eL", psql}, args...)
		}
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+tok, "PGSSLMODE=require")
		cmd.Stdin = strings.NewReader(s.sql + "\n")
		b, _ := cmd.CombinedOutput()
		fmt.Fprintf(out, "%s\n", b)
	}
	fmt.Fprintln(out, "--- the audit log (every connection and statement, with the decision and the rule)")
	evs, err := gw.Store.Query(ctx, store.Query{Limit: 100})
	if err != nil {
		return err
	}
	for _, ev := range evs {
		req := ev.Request
		if len(req) > 60 {
			req = req[:57] + "..."
		}
		fmt.Fprintf(out, "%-4d %-15s %-8s %-6s %-22s %s\n", ev.ID, ev.Kind, ev.Subject, ev.Decision, ev.Rule, req)
	}
	if _, firstBad, err := gw.Store.Verify(ctx); err != nil || firstBad != 0 {
		return fmt.Errorf("tour: audit chain does not verify (first bad %d): %v", firstBad, err)
	}
	fmt.Fprintln(out, "\naudit hash chain verified.")
	return nil
}

// demoBilling is a small internal API: it answers only requests carrying
// its own key.
func demoBilling(key string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/invoices/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q,"total":120.50,"customer":{"name":"Ada","email":"ada@example.com"},"seen_authorization":%q}`+"\n",
			r.PathValue("id"), redactKey(r.Header.Get("Authorization"), key))
	})
	mux.HandleFunc("POST /v1/refunds", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"refund":"created"}`+"\n")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+key {
			http.Error(w, `{"error":"wrong service key"}`, http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// redactKey shows which credential the API saw without printing it.
func redactKey(got, key string) string {
	if got == "Bearer "+key {
		return "the billing service key (injected by warden)"
	}
	return "something else"
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// runHTTPTour drives the billing API through warden with curl.
func runHTTPTour(ctx context.Context, out io.Writer, caFile, httpAddr, tok string, gw *gateway.Gateway) error {
	curl, err := exec.LookPath("curl")
	if err != nil {
		fmt.Fprintln(out, "(curl not found: skipping the HTTP part of the tour)")
		return nil
	}
	base := "https://" + httpAddr + "/t/billing"
	steps := []struct{ what, method, path string }{
		{"an allowed read: the service's key is injected, the customer's email masked", "GET", "/v1/invoices/7"},
		{"a refund needs a human: held, then refused with the review id", "POST", "/v1/refunds"},
		{"a call the policy does not allow", "DELETE", "/v1/invoices/7"},
	}
	for _, s := range steps {
		fmt.Fprintf(out, "--- %s\n$ curl -X %s %s%s\n", s.what, s.method, base, s.path)
		cmd := exec.CommandContext(ctx, curl, "-sS", "--cacert", caFile, "-X", s.method, "-H", "Authorization: Bearer "+tok,
			"-w", "\n(HTTP %{http_code})\n", base+s.path)
		b, _ := cmd.CombinedOutput()
		fmt.Fprintf(out, "%s\n", b)
	}
	if _, firstBad, err := gw.Store.Verify(ctx); err != nil || firstBad != 0 {
		return fmt.Errorf("tour: audit chain does not verify (first bad %d): %v", firstBad, err)
	}
	fmt.Fprintln(out, "audit hash chain verified. Demo finished.")
	return nil
}
