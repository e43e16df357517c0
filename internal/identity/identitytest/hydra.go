package identitytest

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
)

// Ory Hydra v2.3.0, a real OpenID provider with the OAuth 2.0 client
// credentials grant, for end-to-end tests. The binary comes from
// WARDEN_HYDRA or the cache path scripts/build-hydra.sh (`make hydra`)
// writes; without it HydraBinary skips the test.

// HydraBinary finds the Hydra binary or skips the test.
func HydraBinary(t *testing.T) string {
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

type Hydra struct {
	bin           string
	Public, Admin string // base URLs
	Client        *http.Client
}

type HydraClient struct{ ID, Secret string }

// StartHydra runs `hydra serve all` with an in-memory store on two free
// loopback ports and waits (bounded) until it is ready. The process is
// killed and reaped when the test ends.
func StartHydra(t *testing.T, bin string) *Hydra {
	t.Helper()
	pub, adm := freePort(t), freePort(t)
	h := &Hydra{
		bin:    bin,
		Public: "http://127.0.0.1:" + strconv.Itoa(pub),
		Admin:  "http://127.0.0.1:" + strconv.Itoa(adm),
		// Generous: Hydra generates its RSA signing keys on first use,
		// which takes seconds on a busy two-core machine.
		Client: &http.Client{Timeout: 30 * time.Second},
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
		"URLS_SELF_ISSUER="+h.Public,
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

func (h *Hydra) ready() bool {
	for _, u := range []string{h.Admin + "/health/ready", h.Public + "/.well-known/openid-configuration"} {
		resp, err := h.Client.Get(u)
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

// CreateClient registers an OAuth 2.0 client with the hydra CLI, as an
// operator would.
func (h *Hydra) CreateClient(t *testing.T, name, audience string) HydraClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, "create", "oauth2-client",
		"--endpoint", h.Admin,
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
	return HydraClient(c)
}

// token runs the client credentials grant over plain net/http.
func (h *Hydra) Token(t *testing.T, c HydraClient, audience string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if audience != "" {
		form.Set("audience", audience)
	}
	req, err := http.NewRequest(http.MethodPost, h.Public+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// RFC 6749 §2.3.1: client id and secret are form-encoded before
	// going into Basic auth.
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	resp, err := h.Client.Do(req)
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

func (h *Hydra) GetJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := h.Client.Get(u)
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
