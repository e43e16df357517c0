// Package gateway wires warden's parts together from a loaded
// configuration: the audit store, the identity verifier, the compiled
// policy and the protocol listeners. It is what `warden serve` and
// `warden demo` run, and what end-to-end tests start. It holds no protocol
// or policy logic of its own.
package gateway

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-gateway/warden/internal/admin"
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/metrics"
	"github.com/warden-gateway/warden/internal/policy"
	"github.com/warden-gateway/warden/internal/proxy/httpproxy"
	"github.com/warden-gateway/warden/internal/proxy/postgres"
	"github.com/warden-gateway/warden/internal/review"
	"github.com/warden-gateway/warden/internal/sqlfacts"
	"github.com/warden-gateway/warden/internal/store"
)

// Options are the non-config inputs of a Gateway.
type Options struct {
	Logger     *slog.Logger // default slog.Default()
	HTTPClient *http.Client // for OIDC discovery/JWKS; default http.DefaultClient
}

// Gateway is a running warden.
type Gateway struct {
	cfg         *config.Config
	log         *slog.Logger
	Store       *store.SQLite
	Policy      *policy.Engine
	PG          *postgres.Server
	HTTP        *httpproxy.Server // http and kubernetes targets; nil without any
	Metrics     *metrics.Metrics
	Revocations *identity.Revocations
	Reviews     *review.Manager
	Admin       *admin.API

	assert  *httpproxy.Asserter
	pgLn    net.Listener
	httpLn  net.Listener
	httpSrv *http.Server
	wg      sync.WaitGroup
}

// StorePath turns the `store:` setting into a SQLite file path.
func StorePath(cfg *config.Config) (string, error) {
	s := cfg.Store
	switch {
	case strings.HasPrefix(s, "sqlite://"):
		p := strings.TrimPrefix(s, "sqlite://")
		if p == "" {
			return "", errors.New("store: empty sqlite path")
		}
		return cfg.Resolve(p), nil
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		return "", errors.New("store: the PostgreSQL store is not implemented yet; use sqlite://")
	default:
		return "", fmt.Errorf("store: unsupported store %q (want sqlite://PATH)", s)
	}
}

// New builds a gateway from cfg and opens its listeners. On error nothing
// is left running.
func New(ctx context.Context, cfg *config.Config, opts Options) (g *Gateway, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	gw := &Gateway{cfg: cfg, log: opts.Logger}
	g = gw
	defer func() {
		// Every error return sets g to nil; clean up what was started
		// through gw.
		if err != nil {
			gw.Close()
			g = nil
		}
	}()
	path, err := StorePath(cfg)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	// The metrics exist before the store (the store reports commits to
	// them); the queue-depth gauge reads the store once it is open.
	var storeRef atomic.Pointer[store.SQLite]
	gw.Metrics = metrics.New(func() float64 {
		if st := storeRef.Load(); st != nil {
			return float64(st.Stats().QueueDepth)
		}
		return 0
	})
	gw.Store, err = store.OpenSQLite(ctx, path, store.Options{
		Logger:           opts.Logger,
		Retention:        cfg.Audit.Retention,
		ProcessCrashOnly: cfg.Audit.Sync == "os",
		OnCommit:         gw.Metrics.AuditCommit,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	storeRef.Store(gw.Store)
	// Revoked subjects survive restarts; a revoked subject is refused by
	// every protocol and by the admin API.
	gw.Revocations = &identity.Revocations{}
	revs, err := gw.Store.Revocations(ctx)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	for _, r := range revs {
		gw.Revocations.Revoke(r.Subject)
	}
	oidc, err := identity.NewOIDC(ctx, cfg.Identity.OIDC, identity.Options{Logger: opts.Logger, HTTPClient: opts.HTTPClient})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	verifier := identity.WithRevocations(oidc, gw.Revocations)
	gw.Policy, err = policy.Compile(cfg)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	var notifier review.Notifier
	if wh := cfg.Reviews.Webhook; wh.URL != "" {
		notifier = &review.Webhook{URL: wh.URL, Secret: []byte(wh.Secret), Format: wh.Format, ConsoleURL: cfg.Reviews.ConsoleURL}
	}
	gw.Reviews, err = review.NewManager(review.Config{
		Store:      gw.Store,
		Audit:      gw.Store,
		Notifier:   notifier,
		ReviewTTL:  cfg.Reviews.TTL,
		GrantTTL:   cfg.Reviews.GrantTTL,
		ConsoleURL: cfg.Reviews.ConsoleURL,
		IsApprover: func(p *identity.Principal, r *review.Review) bool {
			return gw.Policy.IsApprover(p, r.Approvers)
		},
		Logger:       opts.Logger,
		MaxAuditText: cfg.Audit.MaxRequestBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	targets := make(map[string]*postgres.Target)
	for _, t := range cfg.Targets {
		if t.Type != "postgres" {
			continue
		}
		pt, err := postgres.NewTarget(t.Name, t.Address, t.Database, t.User, t.Password, t.SSLMode, t.Schema)
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		targets[t.Name] = pt
	}
	var tlsCfg *tls.Config
	if cfg.TLS != nil {
		cert, err := tls.LoadX509KeyPair(cfg.Resolve(cfg.TLS.Cert), cfg.Resolve(cfg.TLS.Key))
		if err != nil {
			return nil, fmt.Errorf("gateway: tls: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	maskKey, detectors := gw.Policy.MaskConfig()
	gw.PG, err = postgres.NewServer(postgres.Config{
		MaskHashKey:      maskKey,
		CustomDetectors:  detectors,
		Targets:          targets,
		Verifier:         verifier,
		Policy:           gw.Policy,
		Facts:            sqlfacts.NewCache(10000),
		Audit:            gw.Store,
		Logger:           opts.Logger,
		Metrics:          gw.Metrics,
		MaxAuditText:     cfg.Audit.MaxRequestBytes,
		Reviews:          gw.Reviews,
		ReviewWait:       cfg.Reviews.Wait,
		TLS:              tlsCfg,
		AllowPlaintext:   cfg.TLS != nil && cfg.TLS.AllowPlaintextPasswords,
		MaxMessageBytes:  cfg.Limits.MaxMessageBytes,
		MaxQueryBytes:    cfg.Limits.MaxQueryBytes,
		HandshakeTimeout: cfg.Limits.HandshakeTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	gw.Admin, err = admin.New(admin.Config{
		Verifier: verifier,
		IsAdmin:  gw.Policy.IsAdmin,
		Audit:    gw.Store,
		Sessions: sessions{gw},
		Revoker:  revoker{gw},
		Reviews:  gw.Reviews,
		Record:   gw.Store,
		Logger:   opts.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if gw.HTTP, err = newHTTPProxy(cfg, gw, verifier, maskKey, detectors, opts.Logger); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if cfg.Listen.Postgres != "" {
		gw.pgLn, err = net.Listen("tcp", cfg.Listen.Postgres)
		if err != nil {
			return nil, fmt.Errorf("gateway: listen postgres: %w", err)
		}
		gw.wg.Add(1)
		go func() {
			defer gw.wg.Done()
			if err := gw.PG.Serve(gw.pgLn); err != nil && !errors.Is(err, net.ErrClosed) {
				gw.log.Error("postgres listener stopped", "err", err)
			}
		}()
	}
	if cfg.Listen.HTTP != "" {
		gw.httpLn, err = net.Listen("tcp", cfg.Listen.HTTP)
		if err != nil {
			return nil, fmt.Errorf("gateway: listen http: %w", err)
		}
		if tlsCfg != nil {
			// With tls: the http listener speaks HTTPS only (tokens cross
			// it; kubectl sends credentials only to https servers).
			// HTTP/1.1 only: upgrades (exec, WebSocket) need it.
			hc := tlsCfg.Clone()
			hc.NextProtos = []string{"http/1.1"}
			gw.httpLn = tls.NewListener(gw.httpLn, hc)
		}
		gw.httpSrv = &http.Server{Handler: gw.httpHandler(), ReadHeaderTimeout: 10 * time.Second}
		gw.wg.Add(1)
		go func() {
			defer gw.wg.Done()
			if err := gw.httpSrv.Serve(gw.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				gw.log.Error("http listener stopped", "err", err)
			}
		}()
	}
	return gw, nil
}

// PostgresAddr is the PostgreSQL listener's address (nil if none).
func (g *Gateway) PostgresAddr() net.Addr {
	if g.pgLn == nil {
		return nil
	}
	return g.pgLn.Addr()
}

// HTTPAddr is the HTTP listener's address (nil if none).
func (g *Gateway) HTTPAddr() net.Addr {
	if g.httpLn == nil {
		return nil
	}
	return g.httpLn.Addr()
}

func (g *Gateway) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", g.Metrics.Handler())
	mux.Handle("/api/", g.Admin)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := g.Store.Healthy(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "audit store: " + err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	if g.HTTP == nil {
		return mux
	}
	if g.assert != nil {
		mux.HandleFunc("GET "+httpproxy.JWKSPath, g.assert.ServeJWKS)
	}
	// Target paths go to the proxy before the mux, which would clean (and
	// redirect) paths the proxy must refuse as they are. Host routing
	// (<target>.<http.domain>) sends the whole request, whatever its path,
	// to the target.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/t/") || g.HTTP.IsTargetHost(r) {
			g.HTTP.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// Close stops listeners, closes sessions and the store. Safe after a
// partial start.
func (g *Gateway) Close() error {
	if g.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		g.httpSrv.Shutdown(ctx)
		cancel()
	} else if g.httpLn != nil {
		g.httpLn.Close()
	}
	if g.HTTP != nil {
		g.HTTP.Close()
	}
	if g.PG != nil {
		g.PG.Close()
	} else if g.pgLn != nil {
		g.pgLn.Close()
	}
	g.wg.Wait()
	if g.Reviews != nil {
		g.Reviews.Close()
	}
	if g.Store != nil {
		return g.Store.Close()
	}
	return nil
}

// sessions adapts the proxies' sessions to the admin API: PostgreSQL
// connections, and HTTP and Kubernetes requests in flight (watches, exec).
type sessions struct{ g *Gateway }

func (s sessions) List() []admin.Session {
	infos := s.g.PG.Sessions()
	out := make([]admin.Session, len(infos))
	for i, in := range infos {
		out[i] = admin.Session(in)
	}
	if s.g.HTTP != nil {
		for _, in := range s.g.HTTP.Sessions() {
			out = append(out, admin.Session{ID: in.ID, Protocol: in.Protocol, Target: in.Target, Subject: in.Subject, Issuer: in.Issuer,
				Groups: in.Groups, TokenID: in.TokenID, Client: in.Client, Started: in.Started, Expires: in.Expires})
		}
	}
	return out
}

func (s sessions) Terminate(id, reason string) bool {
	if s.g.PG.Terminate(id, reason) {
		return true
	}
	return s.g.HTTP != nil && s.g.HTTP.Terminate(id, reason)
}

func (s sessions) TerminateSubject(sub, reason string) int {
	n := s.g.PG.TerminateSubject(sub, reason)
	if s.g.HTTP != nil {
		n += s.g.HTTP.TerminateSubject(sub, reason)
	}
	return n
}

// revoker revokes a subject: recorded durably first, then refused by
// every verifier, then its open sessions are closed at once.
type revoker struct{ g *Gateway }

func (r revoker) Revoke(ctx context.Context, subject, by, reason string) (int, error) {
	if err := r.g.Store.Revoke(ctx, subject, by, reason); err != nil {
		return 0, err
	}
	r.g.Revocations.Revoke(subject)
	return sessions{r.g}.TerminateSubject(subject, "access revoked: "+reason), nil
}

// newHTTPProxy builds the proxy of the http and kubernetes targets; nil
// when there are none.
func newHTTPProxy(cfg *config.Config, gw *Gateway, verifier identity.Verifier, maskKey []byte, detectors map[string]string, log *slog.Logger) (*httpproxy.Server, error) {
	targets := map[string]*httpproxy.Target{}
	for _, t := range cfg.Targets {
		if t.Type != "http" && t.Type != "kubernetes" {
			continue
		}
		o := httpproxy.TargetOptions{
			Name: t.Name, Kind: t.Type, URL: t.URL, Headers: t.Headers,
			TokenFile: cfg.Resolve(t.TokenFile), CAFile: cfg.Resolve(t.CAFile),
			CertFile: cfg.Resolve(t.CertFile), KeyFile: cfg.Resolve(t.KeyFile), Timeout: t.Timeout,
		}
		if t.BasicAuth != nil {
			o.HasBasic, o.BasicUser, o.BasicPwd = true, t.BasicAuth.Username, t.BasicAuth.Password
		}
		ht, err := httpproxy.NewTarget(o)
		if err != nil {
			return nil, err
		}
		targets[t.Name] = ht
	}
	if len(targets) == 0 {
		return nil, nil
	}
	if cfg.Listen.HTTP == "" {
		return nil, errors.New("http and kubernetes targets need listen.http")
	}
	var err error
	if gw.assert, err = httpproxy.NewAsserter(cfg.Resolve(cfg.HTTP.AssertionKeyFile), cfg.HTTP.AssertionTTL); err != nil {
		return nil, err
	}
	engine := gw.Policy
	return httpproxy.New(httpproxy.Config{
		Targets:         targets,
		Domain:          cfg.HTTP.Domain,
		Verifier:        verifier,
		Policy:          func() *policy.Engine { return engine },
		Audit:           gw.Store,
		Reviews:         gw.Reviews,
		Asserter:        gw.assert,
		IdentityHeader:  cfg.HTTP.IdentityHeader,
		ReviewWait:      cfg.Reviews.Wait,
		MaxRequestBytes: cfg.HTTP.MaxRequestBytes,
		MaxMaskBytes:    cfg.HTTP.MaxMaskBytes,
		MaxAuditText:    cfg.Audit.MaxRequestBytes,
		MaskHashKey:     maskKey,
		CustomDetectors: detectors,
		Metrics:         gw.Metrics,
		Logger:          log,
	})
}
