package identity_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/identity"
)

// TestHydraClientCredentials verifies access tokens from a real OpenID
// provider, Ory Hydra v2.3.0, obtained with the OAuth 2.0 client
// credentials grant (RFC 6749 §4.4) — the way an unattended agent gets
// its token.
//
// The binary comes from WARDEN_HYDRA or the cache path that
// scripts/build-hydra.sh (`make hydra`) writes; without it the test skips.
func TestHydraClientCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Ory Hydra; skipped with -short")
	}
	bin := hydraBinary(t)
	start := time.Now()
	h := startHydra(t, bin)
	t.Logf("hydra ready after %s", time.Since(start).Round(time.Millisecond))

	wardenClient := h.createClient(t, "agent", "warden")
	otherClient := h.createClient(t, "other-service", "other")

	// Fetch the tokens before building the Authenticator: Hydra creates
	// its access-token signing key on first use, and a key that appears
	// after start-up is picked up only once the refresh rate limit allows.
	t.Logf("clients created after %s", time.Since(start).Round(time.Millisecond))
	tok := h.token(t, wardenClient, "warden")
	t.Logf("first token after %s", time.Since(start).Round(time.Millisecond))
	otherTok := h.token(t, otherClient, "other")
	noAudTok := h.token(t, wardenClient, "")

	// Use exactly the issuer Hydra announces (no trailing slash in v2,
	// but the point is not to guess): it must equal "iss" byte for byte.
	var disc struct {
		Issuer string `json:"issuer"`
	}
	h.getJSON(t, h.public+"/.well-known/openid-configuration", &disc)
	if disc.Issuer != h.public {
		t.Logf("Hydra's issuer is %q (configured %q)", disc.Issuer, h.public)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	auth, err := identity.NewOIDC(ctx, []config.OIDCIssuer{{Issuer: disc.Issuer, Audience: "warden"}}, identity.Options{})
	if err != nil {
		t.Fatalf("NewOIDC against Hydra: %v", err)
	}

	p, err := auth.Verify(ctx, tok)
	if err != nil {
		t.Fatalf("Verify a Hydra client_credentials token: %v", err)
	}
	if p.Subject != wardenClient.ID {
		t.Errorf("Subject = %q, want the client id %q", p.Subject, wardenClient.ID)
	}
	if p.Issuer != disc.Issuer || p.TokenID == "" || p.Expiry.Before(time.Now()) {
		t.Errorf("principal = %+v", p)
	}
	if p.Claims["client_id"] != wardenClient.ID {
		t.Errorf("claims = %v", p.Claims)
	}

	for name, bad := range map[string]string{"audience other": otherTok, "no audience": noAudTok} {
		_, err := auth.Verify(ctx, bad)
		if r := identity.ReasonOf(err); r != identity.ReasonBadAudience {
			t.Errorf("%s: reason %q (err %v), want %q", name, r, err, identity.ReasonBadAudience)
		}
	}
	// And one Hydra token tampered with, for good measure.
	parts := strings.Split(tok, ".")
	forged := parts[0] + "." + parts[1] + "." + strings.Split(otherTok, ".")[2]
	if _, err := auth.Verify(ctx, forged); identity.ReasonOf(err) != identity.ReasonBadSignature {
		t.Errorf("spliced signature: %v", err)
	}
}

// hydraBinary finds the Hydra binary or skips the test.
func hydraBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WARDEN_HYDRA"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("WARDEN_HYDRA=%s: %v", p, err)
		}
		return p
	}
	// The default of scripts/build-hydra.sh.
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Skipf("Ory Hydra not found (no home directory); run `make hydra` or set WARDEN_HYDRA")
		}
		cache = filepath.Join(home, ".cache")
	}
	p := filepath.Join(cache, "warden", "hydra", "hydra")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("Ory Hydra not found at %s; run `make hydra` (scripts/build-hydra.sh) or set WARDEN_HYDRA", p)
	}
	return p
}

type hydra struct {
	bin           string
	public, admin string
	client        *http.Client
}

type hydraClient struct{ ID, Secret string }

// startHydra runs `hydra serve all` with an in-memory store on two free
// loopback ports and waits (bounded) until it is ready. The process is
// killed and reaped when the test ends.
func startHydra(t *testing.T, bin string) *hydra {
	t.Helper()
	pub, adm := freePort(t), freePort(t)
	h := &hydra{
		bin:    bin,
		public: "http://127.0.0.1:" + strconv.Itoa(pub),
		admin:  "http://127.0.0.1:" + strconv.Itoa(adm),
		// Generous: Hydra generates its RSA signing keys on first use,
		// which takes seconds on a busy two-core machine.
		client: &http.Client{Timeout: 30 * time.Second},
	}
	secret := make([]byte, 32)
	rand.Read(secret)

	logPath := filepath.Join(t.TempDir(), "hydra.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out")
	cmd.Env = append(os.Environ(),
		"DSN=memory",
		"URLS_SELF_ISSUER="+h.public,
		"SERVE_PUBLIC_HOST=127.0.0.1", "SERVE_PUBLIC_PORT="+strconv.Itoa(pub),
		"SERVE_ADMIN_HOST=127.0.0.1", "SERVE_ADMIN_PORT="+strconv.Itoa(adm),
		"STRATEGIES_ACCESS_TOKEN=jwt",
		"SECRETS_SYSTEM="+hex.EncodeToString(secret),
		"LOG_LEVEL=warn",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start hydra: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("hydra (pid %d) did not exit after kill", cmd.Process.Pid)
		}
		logFile.Close()
	})
	dumpLog := func() string {
		b, _ := os.ReadFile(logPath)
		return string(b)
	}

	const startTimeout = 60 * time.Second
	deadline := time.Now().Add(startTimeout)
	for {
		if h.ready() {
			return h
		}
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("hydra exited before it was ready: %v\n%s", err, dumpLog())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("hydra not ready after %s\n%s", startTimeout, dumpLog())
		}
	}
}

func (h *hydra) ready() bool {
	for _, u := range []string{h.admin + "/health/ready", h.public + "/.well-known/openid-configuration"} {
		resp, err := h.client.Get(u)
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
	}
	return true
}

// createClient registers an OAuth 2.0 client with the hydra CLI, as an
// operator would.
func (h *hydra) createClient(t *testing.T, name, audience string) hydraClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, "create", "oauth2-client",
		"--endpoint", h.admin,
		"--name", name,
		"--grant-type", "client_credentials",
		"--token-endpoint-auth-method", "client_secret_basic",
		"--audience", audience,
		"--scope", "read",
		"--format", "json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hydra create oauth2-client: %v\n%s", err, stderr.String())
	}
	var c struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal(out, &c); err != nil || c.ID == "" || c.Secret == "" {
		t.Fatalf("hydra create oauth2-client: output %q: %v", out, err)
	}
	return hydraClient(c)
}

// token runs the client credentials grant over plain net/http.
func (h *hydra) token(t *testing.T, c hydraClient, audience string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if audience != "" {
		form.Set("audience", audience)
	}
	req, err := http.NewRequest(http.MethodPost, h.public+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// RFC 6749 §2.3.1: client id and secret are form-encoded before
	// going into Basic auth.
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token endpoint: %s: %s", resp.Status, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("token endpoint: %v (%d bytes)", err, len(body))
	}
	return tr.AccessToken
}

func (h *hydra) getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := h.client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before Hydra binds it; on this kind of test machine that is rare
// enough, and Hydra's exit is reported with its log if it happens.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
