package identity_test

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/identity"
)

func TestLoadOrCreateDevKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dev.pem")
	d1, err := identity.LoadOrCreateDevKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	d2, err := identity.LoadOrCreateDevKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if d1.KeyID() != d2.KeyID() {
		t.Errorf("reloading changed the kid: %s vs %s", d1.KeyID(), d2.KeyID())
	}
	// RFC 7638 §3.2: the thumbprint of an EC key is over exactly
	// {"crv","kty","x","y"} in that order, no whitespace.
	if want := thumbprint(d1.PublicKey()); d1.KeyID() != want {
		t.Errorf("kid = %s, want RFC 7638 thumbprint %s", d1.KeyID(), want)
	}

	bad := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(bad, []byte("not pem"), 0o600)
	if _, err := identity.LoadOrCreateDevKey(bad); err == nil || !strings.Contains(err.Error(), "identity.LoadOrCreateDevKey") {
		t.Errorf("garbage key file: err = %v", err)
	}
}

// TestLoadOrCreateDevKeyRace: processes racing to create the key agree
// on one key.
func TestLoadOrCreateDevKeyRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev.pem")
	kids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range kids {
		wg.Go(func() {
			d, err := identity.LoadOrCreateDevKey(path)
			if err != nil {
				t.Error(err)
				return
			}
			kids[i] = d.KeyID()
		})
	}
	wg.Wait()
	for _, k := range kids {
		if k != kids[0] {
			t.Fatalf("racing creators disagree: %v", kids)
		}
	}
}

func thumbprint(pub *ecdsa.PublicKey) string {
	enc := base64.RawURLEncoding.EncodeToString
	x, y := make([]byte, 32), make([]byte, 32)
	pub.X.FillBytes(x)
	pub.Y.FillBytes(y)
	canon := fmt.Sprintf(`{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}`, enc(x), enc(y))
	sum := sha256.Sum256([]byte(canon))
	return enc(sum[:])
}

func TestDevIssuerHandler(t *testing.T) {
	dev, err := identity.NewDevIssuer()
	if err != nil {
		t.Fatal(err)
	}
	// Mounted under a path, as `warden demo` may do on a shared mux.
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String() + "/dev"
	srv.Config.Handler = dev.Handler(issuer)
	srv.Start()
	defer srv.Close()

	var disc map[string]any
	getJSON(t, issuer+"/.well-known/openid-configuration", &disc)
	if disc["issuer"] != issuer || disc["jwks_uri"] != issuer+"/keys" {
		t.Errorf("discovery = %v", disc)
	}
	if algs, _ := disc["id_token_signing_alg_values_supported"].([]any); len(algs) != 1 || algs[0] != "ES256" {
		t.Errorf("algs = %v", disc["id_token_signing_alg_values_supported"])
	}
	var jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	getJSON(t, issuer+"/keys", &jwks)
	if len(jwks.Keys) != 1 || jwks.Keys[0]["kid"] != dev.KeyID() || jwks.Keys[0]["alg"] != "ES256" ||
		jwks.Keys[0]["use"] != "sig" || jwks.Keys[0]["d"] != nil {
		t.Errorf("jwks = %v", jwks)
	}
	if err := dev.Rotate(); err != nil {
		t.Fatal(err)
	}
	getJSON(t, issuer+"/keys", &jwks)
	if len(jwks.Keys) != 2 || jwks.Keys[0]["kid"] != dev.KeyID() {
		t.Errorf("after Rotate: jwks = %v", jwks)
	}
	resp, err := http.Post(issuer+"/keys", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /keys: %s", resp.Status)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func TestMintChecksArguments(t *testing.T) {
	dev, err := identity.NewDevIssuer()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ iss, aud, sub string }{{"", "a", "s"}, {"i", "", "s"}, {"i", "a", ""}} {
		if _, err := dev.Mint(tt.iss, tt.aud, tt.sub, nil, time.Minute); err == nil {
			t.Errorf("Mint(%q, %q, %q) succeeded", tt.iss, tt.aud, tt.sub)
		}
	}
	if _, err := dev.Mint("i", "a", "s", nil, 0); err == nil {
		t.Error("Mint with ttl 0 succeeded")
	}
}

func TestParseClaimFlags(t *testing.T) {
	tests := []struct {
		in      []string
		want    map[string]any
		wantErr string
	}{
		{in: nil, want: map[string]any{}},
		{in: []string{"groups=analysts"}, want: map[string]any{"groups": []string{"analysts"}}},
		{in: []string{"groups=x", "groups=y"}, want: map[string]any{"groups": []string{"x", "y"}}},
		{in: []string{"team=data"}, want: map[string]any{"team": "data"}},
		{in: []string{"team=a,b"}, want: map[string]any{"team": "a,b"}},
		{in: []string{"scope=read write"}, want: map[string]any{"scope": "read write"}},
		{in: []string{"scope=read", "scope=write"}, want: map[string]any{"scope": []string{"read", "write"}}},
		{in: []string{"url=a=b"}, want: map[string]any{"url": "a=b"}},
		{in: []string{"note="}, want: map[string]any{"note": ""}},
		{in: []string{"groups=a", "team=t", "groups=b"}, want: map[string]any{"groups": []string{"a", "b"}, "team": "t"}},
		{in: []string{"novalue"}, wantErr: "not key=value"},
		{in: []string{"=x"}, wantErr: "empty key"},
		{in: []string{"groups="}, wantErr: "empty group"},
		{in: []string{"sub=root"}, wantErr: "set by the issuer"},
		{in: []string{"exp=1"}, wantErr: "set by the issuer"},
	}
	for _, tt := range tests {
		got, err := identity.ParseClaimFlags(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseClaimFlags(%q) err = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseClaimFlags(%q) = %#v, %v; want %#v", tt.in, got, err, tt.want)
		}
	}
}
