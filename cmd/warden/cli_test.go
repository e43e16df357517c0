package main

// End-to-end tests of the warden CLI. TestMain builds the real binary once;
// every test runs it as a subprocess, against real servers and clients: a
// development OIDC issuer on loopback (httptest), a throwaway PostgreSQL
// (internal/pgtest), psql, and the SQLite audit store read with
// database/sql. Nothing is mocked. Every subprocess runs under a context
// with a deadline and is killed, if still running, in t.Cleanup.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, to read and tamper with audit.db

	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/pgtest"
)

// wardenBin is the binary under test, built by TestMain.
var wardenBin string

// cmdTimeout bounds a one-shot CLI command (token, policy, audit).
const cmdTimeout = 60 * time.Second

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "warden-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	wardenBin = filepath.Join(dir, "warden")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", wardenBin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building warden: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	if code == 0 {
		// House rule: every goroutine has an owner that waits for it. The
		// ones these tests start are exec's pipe copiers, the waiters of
		// served subprocesses and httptest servers.
		if leaked := leakedGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "leaked goroutines:\n%s\n", leaked)
			code = 1
		}
	}
	return code
}

func leakedGoroutines(within time.Duration) string {
	deadline := time.Now().Add(within)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for i, g := range strings.Split(string(buf), "\n\n") {
			if i == 0 || strings.Contains(g, "testing.(*M)") {
				continue
			}
			if strings.Contains(g, "os/exec.") || strings.Contains(g, "warden/cmd/warden.") || strings.Contains(g, "net/http/httptest.") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// result is what a finished command left behind.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// baseEnv is the test process's environment without the variables these
// tests set themselves or that would steer psql (PG*), so that an
// operator's shell cannot change an outcome.
func baseEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "WARDEN_") || strings.HasPrefix(k, "PG") || k == "T_DB_PW" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// run runs name with args to completion, bounded by cmdTimeout, in a
// fresh temporary directory (so a relative default such as
// warden-dev-issuer.pem never lands in the source tree).
func run(t *testing.T, env []string, name string, args ...string) result {
	t.Helper()
	return runTimeout(t, cmdTimeout, env, name, args...)
}

func runTimeout(t *testing.T, timeout time.Duration, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = baseEnv(env...)
	cmd.Dir = t.TempDir()
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %s: no exit within %s\n%s", filepath.Base(name), strings.Join(args, " "), timeout, r)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s %s: %v", filepath.Base(name), strings.Join(args, " "), err)
	}
	return r
}

func warden(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return run(t, env, wardenBin, args...)
}

// wantOutput checks that text matches every pattern (regexp, multi-line
// mode, so ^ and $ anchor lines).
func wantOutput(t *testing.T, what, text string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile("(?m)" + p).MatchString(text) {
			t.Errorf("%s does not match %q:\n%s", what, p, text)
		}
	}
}

func absPath(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// ---- 1. warden policy check ----------------------------------------------

// checkSecret is the upstream password good.yaml reads from the
// environment; no message may ever contain it.
const checkSecret = "s3cret-upstream-pw"

func TestPolicyCheck(t *testing.T) {
	env := []string{"WARDEN_CLI_TEST_PW=" + checkSecret}

	t.Run("good", func(t *testing.T) {
		path := absPath(t, "testdata/check/good.yaml")
		r := warden(t, env, "policy", "check", "--config", path)
		if r.code != 0 {
			t.Fatalf("want exit 0:\n%s", r)
		}
		wantOutput(t, "stdout", r.stdout, `^ok: `+regexp.QuoteMeta(path)+`: 1 targets?, 1 polic(y|ies)$`)
		if r.stderr != "" {
			t.Errorf("want empty stderr:\n%s", r)
		}
	})

	// Each bad_*.yaml says in "# want: …" header lines what stderr must
	// contain: the file name, line, key path and the problem.
	bad, err := filepath.Glob("testdata/check/bad_*.yaml")
	if err != nil || len(bad) == 0 {
		t.Fatalf("no testdata/check/bad_*.yaml (%v)", err)
	}
	for _, path := range bad {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".yaml"), func(t *testing.T) {
			t.Parallel()
			wants := wantFragments(t, path)
			r := warden(t, env, "policy", "check", "--config", absPath(t, path))
			if r.code == 0 {
				t.Fatalf("want a non-zero exit:\n%s", r)
			}
			for _, w := range wants {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r)
				}
			}
			if strings.Contains(r.stdout, "ok:") {
				t.Errorf("stdout says ok for a bad config:\n%s", r)
			}
			if strings.Contains(r.stdout+r.stderr, checkSecret) {
				t.Errorf("output leaks the upstream password:\n%s", r)
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope.yaml")
		r := warden(t, env, "policy", "check", "--config", path)
		if r.code == 0 || !strings.Contains(r.stderr, path) {
			t.Fatalf("want a non-zero exit naming %s:\n%s", path, r)
		}
	})
}

// wantFragments reads the "# want: fragment" lines at the top of a
// testdata config.
func wantFragments(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var wants []string
	for _, line := range strings.Split(string(b), "\n") {
		if w, ok := strings.CutPrefix(line, "# want: "); ok {
			wants = append(wants, w)
		}
	}
	if len(wants) == 0 {
		t.Fatalf("%s has no '# want: ' lines", path)
	}
	return wants
}

// ---- 2. warden token -------------------------------------------------------

func TestToken(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "keys", "dev.pem") // the directory does not exist yet
	args := []string{"token", "--issuer-key", key, "--sub", "agent-1", "--claim", "groups=analysts", "--ttl", "5m"}

	before := time.Now()
	r := warden(t, nil, args...)
	after := time.Now()
	if r.code != 0 {
		t.Fatalf("want exit 0:\n%s", r)
	}
	tok := strings.TrimSpace(r.stdout)
	if strings.ContainsAny(tok, " \n") {
		t.Fatalf("want exactly one token on stdout:\n%s", r)
	}
	header, claims := decodeJWT(t, tok)

	if header["alg"] != "ES256" || header["typ"] != "JWT" {
		t.Errorf("header = %v, want alg ES256, typ JWT", header)
	}
	kid, _ := header["kid"].(string)
	if kid == "" {
		t.Errorf("header has no kid: %v", header)
	}
	if claims["sub"] != "agent-1" {
		t.Errorf("sub = %v, want agent-1", claims["sub"])
	}
	if g, ok := claims["groups"].([]any); !ok || len(g) != 1 || g[0] != "analysts" {
		t.Errorf("groups = %#v, want the array [analysts]", claims["groups"])
	}
	if claims["aud"] != "warden" {
		t.Errorf("aud = %v, want warden", claims["aud"])
	}
	if claims["iss"] != "http://127.0.0.1:5556" {
		t.Errorf("iss = %v, want the default http://127.0.0.1:5556", claims["iss"])
	}
	exp := numClaim(t, claims, "exp")
	if lo, hi := before.Add(5*time.Minute).Unix(), after.Add(5*time.Minute).Unix(); exp < lo || exp > hi {
		t.Errorf("exp = %d, want now+5m (between %d and %d)", exp, lo, hi)
	}
	if iat := numClaim(t, claims, "iat"); iat < before.Unix() || iat > after.Unix() {
		t.Errorf("iat = %d, want now", iat)
	}
	if jti, _ := claims["jti"].(string); jti == "" {
		t.Errorf("no jti: %v", claims)
	}

	// The key file: created private, in a private directory, and the
	// kid is the one of the key in it.
	for p, want := range map[string]os.FileMode{key: 0o600, filepath.Dir(key): 0o700} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
	pemBefore, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := identity.LoadOrCreateDevKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if dev.KeyID() != kid {
		t.Errorf("kid %q is not the key file's (%q)", kid, dev.KeyID())
	}

	// A second call reuses the key: same kid, file untouched, fresh jti.
	r2 := warden(t, nil, args...)
	if r2.code != 0 {
		t.Fatalf("second call: want exit 0:\n%s", r2)
	}
	tok2 := strings.TrimSpace(r2.stdout)
	header2, claims2 := decodeJWT(t, tok2)
	if header2["kid"] != kid {
		t.Errorf("second call: kid %v, want %v (the key must be reused)", header2["kid"], kid)
	}
	if claims2["jti"] == claims["jti"] {
		t.Errorf("two tokens share jti %v", claims["jti"])
	}
	if pemAfter, _ := os.ReadFile(key); !bytes.Equal(pemAfter, pemBefore) {
		t.Errorf("the second call rewrote the key file")
	}

	t.Run("claims", func(t *testing.T) {
		r := warden(t, nil, "token", "--issuer-key", key, "--sub", "agent-2",
			"--claim", "groups=a", "--claim", "groups=b", "--claim", "team=data", "--claim", "scope=x,y z",
			"--issuer", "http://127.0.0.1:9999", "--audience", "other")
		if r.code != 0 {
			t.Fatalf("want exit 0:\n%s", r)
		}
		_, c := decodeJWT(t, strings.TrimSpace(r.stdout))
		if g, ok := c["groups"].([]any); !ok || len(g) != 2 || g[0] != "a" || g[1] != "b" {
			t.Errorf("groups = %#v, want [a b]", c["groups"])
		}
		if c["team"] != "data" || c["scope"] != "x,y z" {
			t.Errorf("team = %#v, scope = %#v, want the strings data and \"x,y z\"", c["team"], c["scope"])
		}
		if c["iss"] != "http://127.0.0.1:9999" || c["aud"] != "other" {
			t.Errorf("iss = %v, aud = %v, want the flags' values", c["iss"], c["aud"])
		}
	})

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no sub", []string{"--claim", "groups=analysts"}, "--sub is required"},
		{"registered claim", []string{"--sub", "a", "--claim", "exp=1"}, `claim "exp" is set by the issuer`},
		{"claim without =", []string{"--sub", "a", "--claim", "groups"}, "is not key=value"},
		{"zero ttl", []string{"--sub", "a", "--ttl", "0s"}, "must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := warden(t, nil, append([]string{"token", "--issuer-key", key}, tc.args...)...)
			if r.code == 0 || r.stdout != "" || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("want a non-zero exit, no token, and %q on stderr:\n%s", tc.want, r)
			}
		})
	}
}

// decodeJWT returns a compact JWS's header and payload, unverified.
func decodeJWT(t *testing.T, tok string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts, want 3", tok, len(parts))
	}
	dec := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("token part %q: %v", s, err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("token part %s: %v", b, err)
		}
		return m
	}
	return dec(parts[0]), dec(parts[1])
}

func numClaim(t *testing.T, claims map[string]any, name string) int64 {
	t.Helper()
	f, ok := claims[name].(float64)
	if !ok {
		t.Fatalf("%s = %#v, want a number", name, claims[name])
	}
	return int64(f)
}

// ---- shared set-up: development issuer, config, tokens --------------------

// devIssuer is warden's development issuer served on loopback from a key
// file, so that `warden token --issuer-key` with the same file mints
// tokens it vouches for.
type devIssuer struct {
	URL string
	Key string // key file
}

func startDevIssuer(t *testing.T, keyPath string) *devIssuer {
	t.Helper()
	dev, err := identity.LoadOrCreateDevKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	// The handler needs its own URL, known once the listener exists.
	srv := httptest.NewUnstartedServer(nil)
	url := "http://" + srv.Listener.Addr().String()
	srv.Config.Handler = dev.Handler(url)
	srv.Start()
	t.Cleanup(srv.Close)
	return &devIssuer{URL: url, Key: keyPath}
}

// mint runs `warden token` for this issuer and returns the token.
func (d *devIssuer) mint(t *testing.T, args ...string) string {
	t.Helper()
	r := warden(t, nil, append([]string{"token", "--issuer", d.URL, "--issuer-key", d.Key, "--ttl", "5m"}, args...)...)
	if r.code != 0 {
		t.Fatalf("warden token: %s", r)
	}
	return strings.TrimSpace(r.stdout)
}

type configParams struct {
	PGListen, HTTPListen, Issuer, DBAddr, Database, User string
}

// writeConfig renders testdata/warden.yaml.tmpl into dir/warden.yaml.
func writeConfig(t *testing.T, dir string, p configParams) string {
	t.Helper()
	tmpl, err := template.ParseFiles("testdata/warden.yaml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	if p.Database == "" {
		p.Database = pgtest.AppDatabase
	}
	if p.User == "" {
		p.User = pgtest.AppUser
	}
	var b bytes.Buffer
	if err := tmpl.Option("missingkey=error").Execute(&b, p); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// ---- 3. warden policy explain ----------------------------------------------

func TestPolicyExplain(t *testing.T) {
	t.Run("sub", func(t *testing.T) {
		cfg := absPath(t, "testdata/check/good.yaml")
		env := []string{"WARDEN_CLI_TEST_PW=" + checkSecret}
		for _, tc := range []struct {
			name, sql string
			claims    []string
			code      int
			want      []string
		}{
			{
				name: "delete is default-denied", sql: "DELETE FROM orders",
				claims: []string{"groups=analysts"}, code: 2,
				want: []string{
					`^subject:[ \t]+agent-1$`, `^policies:[ \t]+analyst-agents$`,
					`^statement 1: delete$`, `^  needs delete on public\.orders$`,
					`^decision:[ \t]+deny$`, `^policy:[ \t]+-$`, `^rule:[ \t]+default deny$`,
					`^client sees: ERROR 42501: warden: permission denied: .*\[policy: -, rule: default deny\]$`,
				},
			},
			{
				name: "select is allowed", sql: "SELECT * FROM orders",
				claims: []string{"groups=analysts"}, code: 0,
				want: []string{
					`^  needs select on public\.orders$`, `^decision:[ \t]+allow$`,
					`^policy:[ \t]+analyst-agents$`, `^rule:[ \t]+analyst-agents/allow\[0\]$`,
					`^reason:[ \t]+allowed by analyst-agents/allow\[0\]$`,
				},
			},
			{
				name: "multi-statement trick", sql: "SELECT 1; /* ; */ DROP TABLE customers",
				claims: []string{"groups=analysts"}, code: 2,
				want: []string{
					`^statement 1: select$`, `^statement 2: drop table$`,
					`^  needs drop on public\.customers$`, `^decision:[ \t]+deny$`, `^rule:[ \t]+default deny$`,
					`^reason:[ \t]+statement 2 of 2 \(drop table\): drop on public\.customers is not allowed`,
				},
			},
			{
				name: "another group gets nothing", sql: "SELECT * FROM orders",
				claims: []string{"groups=interns"}, code: 2,
				want: []string{`^policies:[ \t]*$`, `^decision:[ \t]+deny$`, `^rule:[ \t]+default deny$`},
			},
			{
				name: "unparseable is denied", sql: "SELEC 1",
				claims: []string{"groups=analysts"}, code: 2,
				want: []string{`^decision:[ \t]+deny$`, `could not parse`},
			},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				args := []string{"policy", "explain", "--config", cfg, "--sub", "agent-1", "--target", "prod-db", "--sql", tc.sql}
				for _, c := range tc.claims {
					args = append(args, "--claim", c)
				}
				r := warden(t, env, args...)
				if r.code != tc.code {
					t.Fatalf("want exit %d:\n%s", tc.code, r)
				}
				wantOutput(t, "stdout", r.stdout, tc.want...)
			})
		}
		r := warden(t, env, "policy", "explain", "--config", cfg, "--sub", "agent-1", "--target", "staging-db", "--sql", "SELECT 1")
		if r.code != 1 || !strings.Contains(r.stderr, `unknown target "staging-db"`) {
			t.Errorf("unknown target: want exit 1 naming it:\n%s", r)
		}
	})

	t.Run("token", func(t *testing.T) {
		dir := t.TempDir()
		iss := startDevIssuer(t, filepath.Join(dir, "dev.pem"))
		// Nothing listens at the target's address: explain must decide
		// without touching the backend.
		cfg := writeConfig(t, dir, configParams{
			PGListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Issuer: iss.URL, DBAddr: "127.0.0.1:1",
		})
		env := []string{"T_DB_PW=unused"}
		tok := iss.mint(t, "--sub", "agent-1", "--claim", "groups=analysts")
		explain := func(tok, sql string) result {
			return warden(t, env, "policy", "explain", "--config", cfg, "--token", tok, "--target", "prod-db", "--sql", sql)
		}

		r := explain(tok, "SELECT * FROM orders")
		if r.code != 0 {
			t.Fatalf("select: want exit 0:\n%s", r)
		}
		wantOutput(t, "select: stdout", r.stdout, `^subject:[ \t]+agent-1$`, `^decision:[ \t]+allow$`, `^rule:[ \t]+analyst-agents/allow\[0\]$`)

		r = explain(tok, "DELETE FROM orders")
		if r.code != 2 {
			t.Fatalf("delete: want exit 2:\n%s", r)
		}
		wantOutput(t, "delete: stdout", r.stdout, `^decision:[ \t]+deny$`, `^rule:[ \t]+default deny$`)

		// Tokens the issuer did not vouch for are refused before any
		// decision is printed.
		other := &devIssuer{URL: iss.URL, Key: filepath.Join(dir, "other.pem")}
		for name, bad := range map[string]string{
			"wrong key":      other.mint(t, "--sub", "agent-1", "--claim", "groups=analysts"),
			"wrong audience": iss.mint(t, "--sub", "agent-1", "--claim", "groups=analysts", "--audience", "not-warden"),
			"not a token":    "not-a-token",
		} {
			r := explain(bad, "SELECT * FROM orders")
			if r.code != 1 || !strings.Contains(r.stderr, "explain: token:") || strings.Contains(r.stdout, "decision:") {
				t.Errorf("%s: want exit 1 with an explain: token: error and no decision:\n%s", name, r)
			}
		}
	})
}

// ---- 4 and 5. warden serve with psql, then warden audit --------------------

// syncBuffer is a bytes.Buffer safe to read while a subprocess writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// served is a long-running warden subprocess.
type served struct {
	cmd  *exec.Cmd
	out  syncBuffer    // stdout and stderr
	done chan struct{} // closed when the process has exited
	err  error         // cmd.Wait's result, set before done closes
}

// startWarden starts `warden args...`; it is killed, if still running,
// when the test ends.
func startWarden(t *testing.T, env []string, args ...string) *served {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	s := &served{done: make(chan struct{})}
	s.cmd = exec.CommandContext(ctx, wardenBin, args...)
	s.cmd.Env = baseEnv(env...)
	s.cmd.Dir = t.TempDir()
	s.cmd.Stdout = &s.out
	s.cmd.Stderr = &s.out
	s.cmd.WaitDelay = 5 * time.Second
	if err := s.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		cancel() // kills the process if it is still running
		<-s.done
		if t.Failed() {
			t.Logf("warden %s output:\n%s", strings.Join(args, " "), s.out.String())
		}
	})
	return s
}

// waitListening waits, bounded, until addr accepts TCP connections.
func (s *served) waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-s.done:
			t.Fatalf("warden exited before listening on %s: %v\n%s", addr, s.err, s.out.String())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after 20s: %v\n%s", addr, err, s.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

func needPostgres(t *testing.T) string {
	t.Helper()
	if _, err := pgtest.FindBinDir(); err != nil {
		t.Skipf("no PostgreSQL server binaries: %v", err)
	}
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Skipf("no psql: %v", err)
	}
	return psql
}

func startPostgres(t *testing.T) *pgtest.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg, err := pgtest.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	return pg
}

// appCount counts the rows of orders directly, as the app user, bypassing warden.
func appCount(t *testing.T, pg *pgtest.Server) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.AppURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// idlePsql is a psql session that stays connected, reading its stdin.
type idlePsql struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    syncBuffer
	done   chan struct{}
	cancel context.CancelFunc
}

// startIdlePsql connects psql through warden and returns once the session
// has answered a first query.
func startIdlePsql(t *testing.T, psqlBin, host, port, tok string) *idlePsql {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	p := &idlePsql{done: make(chan struct{}), cancel: cancel}
	conninfo := fmt.Sprintf("host=%s port=%s dbname=prod-db user=agent-1 sslmode=disable connect_timeout=10", host, port)
	p.cmd = exec.CommandContext(ctx, psqlBin, "-X", "-w", "-A", "-t", "-d", conninfo)
	p.cmd.Env = baseEnv("PGPASSWORD=" + tok)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.WaitDelay = 5 * time.Second
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cancel()
		<-p.done
	})
	if _, err := io.WriteString(p.stdin, "SELECT 'idle-session-' || 'ready';\n"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(p.out.String(), "idle-session-ready") {
		select {
		case <-p.done:
			t.Fatalf("idle psql exited: %s", p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("idle psql not answered after 15s: %s", p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

// finish ends the session's input and waits, bounded, for psql to exit.
func (p *idlePsql) finish(t *testing.T) {
	t.Helper()
	p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Errorf("idle psql still running 15s after its input ended: %s", p.out.String())
	}
}

func TestServeEndToEnd(t *testing.T) {
	psqlBin := needPostgres(t)
	pg := startPostgres(t)
	{
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		conn, err := pgx.Connect(ctx, pg.AppURL())
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		_, err = conn.Exec(ctx, `CREATE TABLE orders (id int PRIMARY KEY, amount numeric(10,2));
INSERT INTO orders VALUES (1, 10), (2, 20), (3, 30);`, pgx.QueryExecModeSimpleProtocol)
		conn.Close(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	iss := startDevIssuer(t, filepath.Join(dir, "dev.pem"))
	pgAddr, httpAddr := freeAddr(t), freeAddr(t)
	cfg := writeConfig(t, dir, configParams{PGListen: pgAddr, HTTPListen: httpAddr, Issuer: iss.URL, DBAddr: pg.Addr()})
	env := []string{"T_DB_PW=" + pgtest.AppPassword}

	if r := warden(t, env, "policy", "check", "--config", cfg); r.code != 0 {
		t.Fatalf("policy check of the serve config:\n%s", r)
	}

	w := startWarden(t, env, "serve", "--config", cfg)
	w.waitListening(t, pgAddr)
	w.waitListening(t, httpAddr)

	tok := iss.mint(t, "--sub", "agent-1", "--claim", "groups=analysts")
	host, port, _ := net.SplitHostPort(pgAddr)
	psql := func(password string, args ...string) result {
		conninfo := fmt.Sprintf("host=%s port=%s dbname=prod-db user=agent-1 sslmode=disable connect_timeout=10", host, port)
		return run(t, []string{"PGPASSWORD=" + password},
			psqlBin, append([]string{"-X", "-w", "-v", "ON_ERROR_STOP=1", "-d", conninfo}, args...)...)
	}

	t.Run("psql select", func(t *testing.T) {
		r := psql(tok, "-A", "-t", "-c", "SELECT count(*) FROM orders")
		if r.code != 0 || strings.TrimSpace(r.stdout) != "3" {
			t.Fatalf("want exit 0 and 3 rows counted:\n%s", r)
		}
	})

	t.Run("psql delete is refused", func(t *testing.T) {
		r := psql(tok, "-v", "VERBOSITY=verbose", "-c", "DELETE FROM orders")
		if r.code == 0 {
			t.Fatalf("want a non-zero exit:\n%s", r)
		}
		wantOutput(t, "psql stderr", r.stderr,
			`ERROR:\s+42501: warden: permission denied: delete on public\.orders is not allowed`,
			`\[policy: -, rule: default deny\]`)
		if n := appCount(t, pg); n != 3 {
			t.Errorf("orders has %d rows after the refused DELETE, want 3", n)
		}
	})

	t.Run("psql session survives a refusal", func(t *testing.T) {
		// ON_ERROR_STOP off: the refused statement must leave the
		// connection usable for the next one.
		r := psql(tok, "-v", "ON_ERROR_STOP=0", "-A", "-t", "-c", "DELETE FROM orders", "-c", "SELECT 'still here'")
		if !strings.Contains(r.stdout, "still here") || !strings.Contains(r.stderr, "permission denied") {
			t.Fatalf("want the DELETE refused and the SELECT answered on one connection:\n%s", r)
		}
	})

	t.Run("psql bad token", func(t *testing.T) {
		other := &devIssuer{URL: iss.URL, Key: filepath.Join(t.TempDir(), "other.pem")}
		forged := other.mint(t, "--sub", "agent-1", "--claim", "groups=analysts")
		for name, pw := range map[string]string{"forged": forged, "garbage": "not-a-token"} {
			r := psql(pw, "-c", "SELECT count(*) FROM orders")
			if r.code == 0 || strings.Contains(r.stdout, "3") {
				t.Errorf("%s token: want the login refused:\n%s", name, r)
			}
		}
	})

	t.Run("health", func(t *testing.T) {
		client := &http.Client{Timeout: 5 * time.Second}
		for path, status := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
			resp, err := client.Get("http://" + httpAddr + path)
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]string
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || err != nil || body["status"] != status {
				t.Errorf("GET %s: %d %q %v (decode: %v), want 200 application/json with status %q",
					path, resp.StatusCode, resp.Header.Get("Content-Type"), body, err, status)
			}
		}
	})

	// SIGTERM: a clean shutdown, exit 0, within 10s, even with a client
	// session open and idle: shutdown must not wait for clients to leave.
	idle := startIdlePsql(t, psqlBin, host, port, tok)
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.done:
		if w.err != nil {
			t.Fatalf("warden serve after SIGTERM: %v, want exit 0\n%s", w.err, w.out.String())
		}
		wantOutput(t, "warden serve output", w.out.String(), `shutting down`)
	case <-time.After(10 * time.Second):
		t.Fatalf("warden serve still running 10s after SIGTERM\n%s", w.out.String())
	}
	idle.finish(t)

	// ---- 5. the audit log of that session ----
	auditDB := filepath.Join(dir, "audit.db")
	db, err := sql.Open("sqlite", auditDB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var rows int
	if err := db.QueryRow(`SELECT count(*) FROM audit_events`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows < 4 {
		t.Fatalf("audit_events has %d rows, want at least a session start, the SELECT, the DELETE and a session end", rows)
	}

	t.Run("audit verify", func(t *testing.T) {
		r := warden(t, env, "audit", "verify", "--config", cfg)
		if r.code != 0 {
			t.Fatalf("want exit 0:\n%s", r)
		}
		wantOutput(t, "stdout", r.stdout, fmt.Sprintf(`^ok: %d records, hash chain intact$`, rows))
	})

	t.Run("audit search deny", func(t *testing.T) {
		r := warden(t, env, "audit", "search", "--config", cfg, "--decision", "deny")
		if r.code != 0 {
			t.Fatalf("want exit 0:\n%s", r)
		}
		var sawDelete bool
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			var ev audit.Event
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("not a JSON line: %q: %v", line, err)
			}
			if ev.Decision != audit.Deny {
				t.Errorf("--decision deny printed a %q record: %s", ev.Decision, line)
			}
			if strings.Contains(ev.Request, "DELETE FROM orders") && ev.Subject == "agent-1" && ev.Target == "prod-db" && ev.Rule == "default deny" {
				sawDelete = true
			}
			if strings.Contains(line, tok) {
				t.Errorf("an audit record holds the access token: %s", line)
			}
		}
		if !sawDelete {
			t.Errorf("no denied DELETE FROM orders by agent-1 on prod-db:\n%s", r.stdout)
		}
	})

	t.Run("audit verify after tampering", func(t *testing.T) {
		res, err := db.Exec(`UPDATE audit_events SET request = 'SELECT 1' WHERE id = 2`)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("tampering changed %d rows, want 1", n)
		}
		r := warden(t, env, "audit", "verify", "--config", cfg)
		if r.code != 1 {
			t.Fatalf("want exit 1:\n%s", r)
		}
		wantOutput(t, "stderr", r.stderr, `\brecord 2\b`)
		if strings.Contains(r.stdout, "intact") {
			t.Errorf("stdout claims an intact chain:\n%s", r)
		}
	})
}

// TestServeStartFailure: when the gateway cannot start, `warden serve`
// exits promptly with an error naming the cause, never a panic.
func TestServeStartFailure(t *testing.T) {
	dir := t.TempDir()
	iss := startDevIssuer(t, filepath.Join(dir, "dev.pem"))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	deadIssuer := "http://" + freeAddr(t) // nothing listens there

	for _, tc := range []struct {
		name string
		p    configParams
		want string
	}{
		{"issuer unreachable", configParams{PGListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Issuer: deadIssuer, DBAddr: "127.0.0.1:1"}, regexp.QuoteMeta(deadIssuer)},
		{"postgres port busy", configParams{PGListen: busy.Addr().String(), HTTPListen: "127.0.0.1:0", Issuer: iss.URL, DBAddr: "127.0.0.1:1"}, `listen postgres: .*address already in use`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeConfig(t, t.TempDir(), tc.p)
			r := runTimeout(t, 30*time.Second, []string{"T_DB_PW=unused"}, wardenBin, "serve", "--config", cfg)
			if r.code != 1 || strings.Contains(r.stderr, "panic") {
				t.Fatalf("want exit 1 with an error, not a panic:\n%s", r)
			}
			wantOutput(t, "stderr", r.stderr, `^warden: .*`+tc.want)
		})
	}
}

// TestAuditVerifyMissingStore: an audit log that is not there (deleted,
// or a config naming the wrong file) must not verify as intact, and
// checking it must not create it.
func TestAuditVerifyMissingStore(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, configParams{
		PGListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Issuer: "http://127.0.0.1:5556", DBAddr: "127.0.0.1:1",
	})
	db := filepath.Join(dir, "audit.db")
	r := warden(t, []string{"T_DB_PW=unused"}, "audit", "verify", "--config", cfg)
	if r.code == 0 || strings.Contains(r.stdout, "intact") || !strings.Contains(r.stderr, db) {
		t.Errorf("want a non-zero exit naming %s:\n%s", db, r)
	}
	if _, err := os.Stat(db); err == nil {
		t.Errorf("audit verify created %s", db)
	}
}

// ---- 6. warden demo --tour -------------------------------------------------

func TestDemoTour(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and runs psql; skipped with -short")
	}
	needPostgres(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	// Free loopback ports rather than the demo's fixed defaults, so the
	// test neither collides with nor exposes anything.
	cmd := exec.CommandContext(ctx, wardenBin, "demo", "--tour", "--dir", dir,
		"--listen", "127.0.0.1:0", "--listen-http", "127.0.0.1:0", "--issuer-listen", "127.0.0.1:0")
	// On timeout, interrupt rather than kill: the demo must get to stop
	// the PostgreSQL it started (pg_ctl daemonises it).
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	cmd.Env = baseEnv()
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("warden demo --tour did not finish within 120s\n%s", out.String())
	}
	if err != nil {
		t.Fatalf("warden demo --tour: %v\n%s", err, out.String())
	}
	wantOutput(t, "demo output", out.String(), `permission denied`, `audit hash chain verified`,
		`"email":"\[REDACTED\]"`, `injected by warden`, `"error":"review_pending"`, `DELETE /v1/invoices/7 is not allowed`, `Demo finished`)

	// What the demo leaves in --dir is a working configuration whose
	// audit log verifies from the CLI too.
	r := warden(t, []string{"WARDEN_DEMO_DB_PASSWORD=" + pgtest.AppPassword, "WARDEN_DEMO_BILLING_KEY=any"}, "audit", "verify", "--config", filepath.Join(dir, "warden.yaml"))
	if r.code != 0 {
		t.Errorf("audit verify of the demo's log: want exit 0:\n%s", r)
	}
	wantOutput(t, "audit verify stdout", r.stdout, `^ok: [1-9][0-9]* records, hash chain intact$`)
}
