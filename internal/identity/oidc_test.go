package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/identity/identitytest"
)

// TestVerifyRejects is the attack table: every token must be refused, with
// the reason an operator would expect to see counted.
func TestVerifyRejects(t *testing.T) {
	a, b := newTestIssuer(t), newTestIssuer(t) // both trusted
	stranger := newTestIssuer(t)               // a real issuer warden does not trust
	clk := newClock()
	logs := &syncBuffer{}
	auth := newAuth(t, clk, logs, identity.Options{}, a.config(), b.config())
	now := clk.Now()
	good := a.claims(now)

	attackerEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	attackerRSA, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, attackerEd, _ := ed25519.GenerateKey(rand.Reader)
	pkix, _ := x509.MarshalPKIXPublicKey(a.Dev.PublicKey())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})

	valid := a.sign(t, good)
	parts := strings.Split(valid, ".")
	enc := base64.RawURLEncoding.EncodeToString
	tampered := parts[0] + "." + enc([]byte(strings.Replace(
		string(mustDecode(t, parts[1])), `"agent-1"`, `"admin-1"`, 1))) + "." + parts[2]

	tests := []struct {
		name   string
		token  string
		reason string
	}{
		// Time (RFC 7519 §4.1.4–4.1.6), leeway 30s.
		{"expired", a.sign(t, with(good, "iat", now.Add(-2*time.Hour).Unix(), "nbf", now.Add(-2*time.Hour).Unix(), "exp", now.Add(-time.Hour).Unix())), identity.ReasonExpired},
		{"expired just past leeway", a.sign(t, with(good, "exp", now.Add(-31*time.Second).Unix())), identity.ReasonExpired},
		{"no exp", a.sign(t, without(good, "exp")), identity.ReasonMissingExpiry},
		{"nbf in the future", a.sign(t, with(good, "nbf", now.Add(5*time.Minute).Unix())), identity.ReasonNotYetValid},
		{"nbf just past leeway", a.sign(t, with(good, "nbf", now.Add(31*time.Second).Unix())), identity.ReasonNotYetValid},
		{"iat in the future", a.sign(t, with(good, "iat", now.Add(5*time.Minute).Unix())), identity.ReasonIssuedInFuture},
		{"exp not a number", a.sign(t, with(good, "exp", "tomorrow")), identity.ReasonInvalidClaim},

		// Audience (RFC 8725 §3.9).
		{"wrong aud", a.sign(t, with(good, "aud", "not-warden")), identity.ReasonBadAudience},
		{"aud array without warden", a.sign(t, with(good, "aud", []string{"a", "b"})), identity.ReasonBadAudience},
		{"aud prefix", a.sign(t, with(good, "aud", "warden-prod")), identity.ReasonBadAudience},
		{"no aud", a.sign(t, without(good, "aud")), identity.ReasonBadAudience},

		// Issuer (RFC 8725 §3.8): exact match only.
		{"wrong iss", a.sign(t, with(good, "iss", "https://evil.example")), identity.ReasonUnknownIssuer},
		{"iss with trailing slash", a.sign(t, with(good, "iss", a.URL+"/")), identity.ReasonUnknownIssuer},
		{"iss different case", a.sign(t, with(good, "iss", strings.ToUpper(a.URL))), identity.ReasonUnknownIssuer},
		{"no iss", a.sign(t, without(good, "iss")), identity.ReasonUnknownIssuer},
		{"iss not a string", a.sign(t, with(good, "iss", 42)), identity.ReasonMalformed},
		{"token from an untrusted issuer", stranger.sign(t, stranger.claims(now)), identity.ReasonUnknownIssuer},
		{"untrusted issuer's key, trusted iss", stranger.sign(t, good), identity.ReasonUnknownKey},

		// Algorithms (RFC 8725 §2.1, §3.1).
		{"alg none", handMade(t, `{"alg":"none","typ":"JWT"}`, good, nil), identity.ReasonUnsupportedAlg},
		{"alg none with kid", handMade(t, `{"alg":"none","kid":"`+a.Dev.KeyID()+`"}`, good, nil), identity.ReasonUnsupportedAlg},
		{"alg None", handMade(t, `{"alg":"None"}`, good, nil), identity.ReasonUnsupportedAlg},
		{"alg none with a signature", handMade(t, `{"alg":"none"}`, good, []byte("sig")), identity.ReasonUnsupportedAlg},
		{"HS256 keyed with the public key PEM", signWith(t, jose.HS256, pubPEM, a.Dev.KeyID(), good, false), identity.ReasonUnsupportedAlg},
		{"HS256 keyed with the JWKS", signWith(t, jose.HS256, a.Dev.JWKS(), a.Dev.KeyID(), good, false), identity.ReasonUnsupportedAlg},
		{"HS512 keyed with the public key PEM", signWith(t, jose.HS512, pubPEM, a.Dev.KeyID(), good, false), identity.ReasonUnsupportedAlg},
		{"ES512 (not accepted)", signWith(t, jose.ES512, mustP521(t), a.Dev.KeyID(), good, false), identity.ReasonUnsupportedAlg},
		{"alg missing", handMade(t, `{"typ":"JWT","kid":"`+a.Dev.KeyID()+`"}`, good, []byte("sig")), identity.ReasonUnsupportedAlg},

		// Keys.
		{"unknown kid", signWith(t, jose.ES256, attackerEC, "no-such-kid", good, false), identity.ReasonUnknownKey},
		{"right kid, wrong key", signWith(t, jose.ES256, attackerEC, a.Dev.KeyID(), good, false), identity.ReasonBadSignature},
		{"right kid, RSA key and RS256", signWith(t, jose.RS256, attackerRSA, a.Dev.KeyID(), good, false), identity.ReasonBadSignature},
		{"right kid, Ed25519 key and EdDSA", signWith(t, jose.EdDSA, attackerEd, a.Dev.KeyID(), good, false), identity.ReasonBadSignature},
		{"no kid, wrong key", signWith(t, jose.ES256, attackerEC, "", good, false), identity.ReasonBadSignature},
		{"attacker key embedded as jwk", signWith(t, jose.ES256, attackerEC, a.Dev.KeyID(), good, true), identity.ReasonBadSignature},
		{"A's iss, B's kid, A's key", signWith(t, jose.ES256, devKey(t, a), b.Dev.KeyID(), good, false), identity.ReasonUnknownKey},
		{"A's iss, signed by B", b.sign(t, good), identity.ReasonUnknownKey},
		{"payload tampered", tampered, identity.ReasonBadSignature},
		{"signature removed", parts[0] + "." + parts[1] + ".", identity.ReasonBadSignature},
		{"signature from another token", parts[0] + "." + strings.Split(a.sign(t, with(good, "sub", "x")), ".")[1] + "." + parts[2], identity.ReasonBadSignature},

		// Claims.
		{"no sub", a.sign(t, without(good, "sub")), identity.ReasonMissingSubject},
		{"empty sub", a.sign(t, with(good, "sub", "")), identity.ReasonMissingSubject},
		{"sub not a string", a.sign(t, with(good, "sub", 7)), identity.ReasonInvalidClaim},
		{"groups a number", a.sign(t, with(good, "groups", 7)), identity.ReasonInvalidClaim},
		{"groups with a non-string", a.sign(t, with(good, "groups", []any{"a", 1})), identity.ReasonInvalidClaim},
		{"groups an object", a.sign(t, with(good, "groups", map[string]any{"admin": true})), identity.ReasonInvalidClaim},

		// Shape (RFC 7519 §7.2).
		{"empty", "", identity.ReasonMalformed},
		{"garbage", "hello world", identity.ReasonMalformed},
		{"three garbage parts", "a.b.c", identity.ReasonMalformed},
		{"truncated", valid[:len(valid)/2], identity.ReasonMalformed},
		{"truncated signature", valid[:len(valid)-3], identity.ReasonBadSignature},
		{"four parts", valid + ".x", identity.ReasonMalformed},
		{"JWE shape", "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", identity.ReasonMalformed},
		{"whitespace inside", parts[0] + ". " + parts[1] + "." + parts[2], identity.ReasonMalformed},
		{"bearer prefix left on", "Bearer " + valid, identity.ReasonMalformed},
		{"JWS JSON serialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, identity.ReasonMalformed},
		{"payload not JSON", parts[0] + "." + enc([]byte("not json")) + "." + parts[2], identity.ReasonMalformed},
		{"payload a JSON array", parts[0] + "." + enc([]byte(`["iss"]`)) + "." + parts[2], identity.ReasonMalformed},
		{"unknown crit header", handMade(t, `{"alg":"ES256","kid":"`+a.Dev.KeyID()+`","crit":["exp"],"exp":1}`, good, make([]byte, 64)), identity.ReasonMalformed},
		{"oversized", strings.Repeat("A", identity.MaxTokenBytes+1), identity.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := auth.Verify(context.Background(), tt.token)
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			if p != nil {
				t.Errorf("returned a principal with the error: %+v", p)
			}
			var ve *identity.VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v (%T) is not a *VerifyError", err, err)
			}
			if ve.Reason != tt.reason {
				t.Errorf("reason = %q, want %q (err: %v)", ve.Reason, tt.reason, err)
			}
			if len(tt.token) > 20 && strings.Contains(err.Error(), tt.token) {
				t.Errorf("error message contains the token")
			}
			t.Logf("%s: %v", ve.Reason, err)
		})
	}
	// Never log tokens, nor any of their signatures.
	out := logs.String()
	for _, tt := range tests {
		if sig := tt.token[strings.LastIndex(tt.token, ".")+1:]; len(sig) > 20 && strings.Contains(out, sig) {
			t.Errorf("log contains the signature of token %q", tt.name)
		}
	}
	if !strings.Contains(out, "reason=bad_audience") {
		t.Errorf("rejections are not logged with their reason; log:\n%s", out)
	}
}

func TestVerifyAccepts(t *testing.T) {
	iss := newTestIssuer(t)
	clk := newClock()
	now := clk.Now()
	roles := iss.config()
	roles.GroupsClaim = "roles"
	good := iss.claims(now)

	tests := []struct {
		name       string
		cfg        config.OIDCIssuer
		claims     map[string]any
		wantGroups []string
	}{
		{"groups array", iss.config(), with(good, "groups", []string{"analysts", "sre"}), []string{"analysts", "sre"}},
		{"groups single string", iss.config(), with(good, "groups", "analysts"), []string{"analysts"}},
		{"groups string is not split", iss.config(), with(good, "groups", "a b,c"), []string{"a b,c"}},
		{"groups empty array", iss.config(), with(good, "groups", []string{}), []string{}},
		{"no groups", iss.config(), without(good, "groups"), nil},
		{"groups null", iss.config(), with(good, "groups", nil), nil},
		{"custom groups claim", roles, with(good, "roles", []string{"dba"}, "groups", 7), []string{"dba"}},
		{"aud array containing warden", iss.config(), with(good, "aud", []string{"other", "warden"}), []string{"analysts"}},
		{"expired within leeway", iss.config(), with(good, "exp", now.Add(-29*time.Second).Unix()), []string{"analysts"}},
		{"nbf within leeway", iss.config(), with(good, "nbf", now.Add(29*time.Second).Unix()), []string{"analysts"}},
		{"no nbf, no iat", iss.config(), without(good, "nbf", "iat"), []string{"analysts"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth := newAuth(t, clk, nil, identity.Options{}, tt.cfg)
			p, err := auth.Verify(context.Background(), iss.sign(t, tt.claims))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.Subject != "agent-1" || p.Issuer != iss.URL || p.TokenID != "jti-1" {
				t.Errorf("principal = %+v", p)
			}
			if want := time.Unix(tt.claims["exp"].(int64), 0); !p.Expiry.Equal(want) {
				t.Errorf("Expiry = %v, want %v", p.Expiry, want)
			}
			if !slices.Equal(p.Groups, tt.wantGroups) || (p.Groups == nil) != (tt.wantGroups == nil) {
				t.Errorf("Groups = %#v, want %#v", p.Groups, tt.wantGroups)
			}
			if p.Claims["sub"] != "agent-1" || p.Claims["iss"] != iss.URL {
				t.Errorf("Claims = %v", p.Claims)
			}
		})
	}
}

func TestLeewayFromConfig(t *testing.T) {
	iss := newTestIssuer(t)
	clk := newClock()
	cfg := iss.config()
	cfg.Leeway = 2 * time.Minute
	auth := newAuth(t, clk, nil, identity.Options{}, cfg)
	tok := iss.sign(t, with(iss.claims(clk.Now()), "exp", clk.Now().Add(-90*time.Second).Unix()))
	if _, err := auth.Verify(context.Background(), tok); err != nil {
		t.Fatalf("token 90s past exp with 2m leeway: %v", err)
	}
	tok = iss.sign(t, with(iss.claims(clk.Now()), "exp", clk.Now().Add(-150*time.Second).Unix()))
	if r := identity.ReasonOf(verifyErr(auth, tok)); r != identity.ReasonExpired {
		t.Fatalf("token 150s past exp with 2m leeway: reason %q", r)
	}
}

func verifyErr(v identity.Verifier, tok string) error {
	_, err := v.Verify(context.Background(), tok)
	return err
}

// TestCache checks that a repeated token is answered without a second
// signature check, and that the cache never outlives exp or its TTL.
func TestCache(t *testing.T) {
	iss := newTestIssuer(t)
	clk := newClock()
	auth := newAuth(t, clk, nil, identity.Options{CacheTTL: 5 * time.Minute}, iss.config())
	ctx := context.Background()
	now := clk.Now()

	tok := iss.sign(t, with(iss.claims(now), "exp", now.Add(time.Minute).Unix()))
	p1, err := auth.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := auth.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	st := auth.Stats()
	if st.SignatureChecks != 1 || st.CacheHits != 1 || p1 != p2 {
		t.Fatalf("second Verify: stats %+v, same principal %v; want 1 check, 1 hit", st, p1 == p2)
	}

	// One second past exp: the cache must not answer. The leeway still
	// lets a full verification accept it, which is a second signature
	// check, not a cache hit.
	clk.Advance(61 * time.Second)
	if _, err := auth.Verify(ctx, tok); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	if st := auth.Stats(); st.CacheHits != 1 || st.SignatureChecks != 2 {
		t.Fatalf("after exp: stats %+v; the cache served an expired token", st)
	}
	// Past exp + leeway: refused, whatever was cached.
	clk.Advance(30 * time.Second)
	if r := identity.ReasonOf(verifyErr(auth, tok)); r != identity.ReasonExpired {
		t.Fatalf("past exp+leeway: reason %q, want expired", r)
	}
	if st := auth.Stats(); st.CacheHits != 1 {
		t.Fatalf("past exp+leeway: stats %+v", st)
	}

	// A long-lived token is re-verified once the TTL has passed.
	long := iss.sign(t, iss.claims(clk.Now())) // exp in 15m
	for range 2 {
		if _, err := auth.Verify(ctx, long); err != nil {
			t.Fatal(err)
		}
	}
	before := auth.Stats()
	clk.Advance(5*time.Minute + time.Second)
	if _, err := auth.Verify(ctx, long); err != nil {
		t.Fatal(err)
	}
	if after := auth.Stats(); after.SignatureChecks != before.SignatureChecks+1 || after.CacheHits != before.CacheHits {
		t.Fatalf("after TTL: before %+v after %+v; want a fresh check", before, after)
	}

	// A rejected token is never cached: the same bytes fail again, with a
	// signature check each time.
	bad := iss.sign(t, with(iss.claims(clk.Now()), "aud", "other"))
	before = auth.Stats()
	for range 3 {
		if r := identity.ReasonOf(verifyErr(auth, bad)); r != identity.ReasonBadAudience {
			t.Fatalf("reason %q", r)
		}
	}
	if after := auth.Stats(); after.SignatureChecks != before.SignatureChecks+3 || after.CacheHits != before.CacheHits {
		t.Fatalf("rejected token: before %+v after %+v", before, after)
	}
}

func TestCacheBounded(t *testing.T) {
	iss := newTestIssuer(t)
	clk := newClock()
	auth := newAuth(t, clk, nil, identity.Options{CacheSize: 3}, iss.config())
	for i := range 10 {
		tok := iss.sign(t, with(iss.claims(clk.Now()), "sub", fmt.Sprint("agent-", i)))
		if _, err := auth.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := auth.Stats().CachedTokens; n != 3 {
		t.Fatalf("cache holds %d tokens, want 3", n)
	}

	off := newAuth(t, clk, nil, identity.Options{CacheSize: -1}, iss.config())
	tok := iss.sign(t, iss.claims(clk.Now()))
	for range 3 {
		if _, err := off.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if st := off.Stats(); st.CacheHits != 0 || st.SignatureChecks != 3 || st.CachedTokens != 0 {
		t.Fatalf("disabled cache: %+v", st)
	}
}

// TestUnknownKidFlood sends 50 tokens with random kids, concurrently: the
// JWKS endpoint must be hit at most once in the rate-limit window.
func TestUnknownKidFlood(t *testing.T) {
	iss := newTestIssuer(t)
	clk := newClock()
	auth := newAuth(t, clk, nil, identity.Options{RefreshInterval: 10 * time.Second}, iss.config())
	if n := iss.jwksHits.Load(); n != 1 {
		t.Fatalf("start-up fetched the JWKS %d times, want 1", n)
	}
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	claims := iss.claims(clk.Now())
	flood := func(n int) {
		var wg sync.WaitGroup
		for i := range n {
			tok := signWith(t, jose.ES256, attacker, fmt.Sprintf("random-kid-%d", i), claims, false)
			wg.Go(func() {
				if r := identity.ReasonOf(verifyErr(auth, tok)); r != identity.ReasonUnknownKey {
					t.Errorf("reason %q, want %q", r, identity.ReasonUnknownKey)
				}
			})
		}
		wg.Wait()
	}

	flood(50) // still inside the window opened by the start-up fetch
	if n := iss.jwksHits.Load(); n != 1 {
		t.Fatalf("50 unknown kids right after start-up: %d JWKS fetches, want 1", n)
	}
	clk.Advance(11 * time.Second)
	flood(50)
	if n := iss.jwksHits.Load(); n != 2 {
		t.Fatalf("50 unknown kids in a new window: %d JWKS fetches in total, want 2", n)
	}
	clk.Advance(5 * time.Second)
	flood(50)
	if n := iss.jwksHits.Load(); n != 2 {
		t.Fatalf("same window: %d JWKS fetches, want 2", n)
	}
	if st := auth.Stats(); st.JWKSFetches != 2 || st.SignatureChecks != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestKeyRotation: the issuer starts signing with a new key; the first
// token with the new kid triggers one refresh and is accepted, and tokens
// under the old key keep working while it is published.
func TestKeyRotation(t *testing.T) {
	iss := newTestIssuer(t)
	clk := newClock()
	auth := newAuth(t, clk, nil, identity.Options{}, iss.config())
	ctx := context.Background()
	oldTok := iss.sign(t, iss.claims(clk.Now()))
	if _, err := auth.Verify(ctx, oldTok); err != nil {
		t.Fatal(err)
	}
	oldKid := iss.Dev.KeyID()
	if err := iss.Dev.Rotate(); err != nil {
		t.Fatal(err)
	}
	if iss.Dev.KeyID() == oldKid {
		t.Fatal("Rotate kept the kid")
	}
	newTok := iss.sign(t, with(iss.claims(clk.Now()), "sub", "agent-2"))

	// Right after start-up the refresh budget is spent: refused for now.
	if r := identity.ReasonOf(verifyErr(auth, newTok)); r != identity.ReasonUnknownKey {
		t.Fatalf("inside the window: reason %q, want unknown_kid", r)
	}
	clk.Advance(identity.DefaultRefreshInterval)
	p, err := auth.Verify(ctx, newTok)
	if err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if p.Subject != "agent-2" {
		t.Fatalf("Subject = %q", p.Subject)
	}
	if n := iss.jwksHits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2 (start-up + one refresh)", n)
	}
	// Old key still published: a token signed before rotation still works,
	// without another fetch.
	if _, err := auth.Verify(ctx, oldTok); err != nil {
		t.Fatalf("old token after rotation: %v", err)
	}
	if n := iss.jwksHits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2", n)
	}
}

// TestStaleKeysRefreshed: a key set older than an hour is fetched again
// before use, so a key the issuer withdrew stops verifying tokens.
func TestStaleKeysRefreshed(t *testing.T) {
	iss := newTestIssuer(t)
	clk := newClock()
	auth := newAuth(t, clk, nil, identity.Options{CacheSize: -1}, iss.config())
	tokOld := iss.sign(t, with(iss.claims(clk.Now()), "exp", clk.Now().Add(3*time.Hour).Unix()))
	if _, err := auth.Verify(context.Background(), tokOld); err != nil {
		t.Fatal(err)
	}
	// Withdraw the old key: a fresh issuer key set without it.
	fresh, err := identity.NewDevIssuer()
	if err != nil {
		t.Fatal(err)
	}
	iss.serve(fresh.Handler(iss.URL))

	clk.Advance(30 * time.Minute)
	if _, err := auth.Verify(context.Background(), tokOld); err != nil {
		t.Fatalf("keys not yet stale: %v", err)
	}
	clk.Advance(31 * time.Minute)
	if r := identity.ReasonOf(verifyErr(auth, tokOld)); r != identity.ReasonUnknownKey {
		t.Fatalf("withdrawn key after an hour: reason %q, want unknown_kid", r)
	}
}

func TestJWKSUnavailable(t *testing.T) {
	iss := newTestIssuer(t)
	clk := newClock()
	auth := newAuth(t, clk, nil, identity.Options{}, iss.config())
	good := iss.sign(t, iss.claims(clk.Now()))
	iss.Dev.Rotate()
	rotated := iss.sign(t, iss.claims(clk.Now()))
	iss.Server.Close()
	clk.Advance(time.Minute)

	if r := identity.ReasonOf(verifyErr(auth, rotated)); r != identity.ReasonJWKSUnavailable {
		t.Fatalf("new kid while the IdP is down: reason %q, want jwks_unavailable", r)
	}
	// Known keys keep working while the IdP is down.
	if _, err := auth.Verify(context.Background(), good); err != nil {
		t.Fatalf("known kid while the IdP is down: %v", err)
	}
}

func TestVerifyContextCanceled(t *testing.T) {
	iss := newTestIssuer(t)
	clk := newClock()
	auth := newAuth(t, clk, nil, identity.Options{}, iss.config())
	iss.Dev.Rotate()
	tok := iss.sign(t, iss.claims(clk.Now()))
	clk.Advance(time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := auth.Verify(ctx, tok)
	if identity.ReasonOf(err) != identity.ReasonJWKSUnavailable || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want jwks_unavailable wrapping context.Canceled", err)
	}
}

func TestNewOIDCErrors(t *testing.T) {
	iss := newTestIssuer(t)
	down := newTestIssuer(t)
	down.Server.Close()

	withCfg := func(f func(*config.OIDCIssuer)) config.OIDCIssuer {
		c := iss.config()
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		issuers []config.OIDCIssuer
		want    string // substring of the error
	}{
		{"no issuers", nil, "no OIDC issuers"},
		{"issuer down", []config.OIDCIssuer{down.config()}, down.URL},
		{"issuer URL not what discovery says", []config.OIDCIssuer{withCfg(func(c *config.OIDCIssuer) { c.Issuer += "/" })}, "did not match"},
		{"no audience", []config.OIDCIssuer{withCfg(func(c *config.OIDCIssuer) { c.Audience = "" })}, "audience is required"},
		{"leeway too large", []config.OIDCIssuer{withCfg(func(c *config.OIDCIssuer) { c.Leeway = time.Hour })}, "leeway"},
		{"negative leeway", []config.OIDCIssuer{withCfg(func(c *config.OIDCIssuer) { c.Leeway = -time.Second })}, "leeway"},
		{"plain http off loopback", []config.OIDCIssuer{{Issuer: "http://idp.example.com", Audience: "warden"}}, "only on loopback"},
		{"jwks over plain http off loopback", []config.OIDCIssuer{withCfg(func(c *config.OIDCIssuer) { c.JWKSURL = "http://idp.example.com/keys" })}, "only on loopback"},
		{"relative issuer", []config.OIDCIssuer{{Issuer: "idp", Audience: "warden"}}, "not an absolute URL"},
		{"duplicate issuer", []config.OIDCIssuer{iss.config(), iss.config()}, "listed twice"},
		{"missing CA file", []config.OIDCIssuer{withCfg(func(c *config.OIDCIssuer) { c.CAFile = "/nonexistent/ca.pem" })}, "ca_file"},
		{"JWKS URL 404", []config.OIDCIssuer{withCfg(func(c *config.OIDCIssuer) { c.JWKSURL = iss.URL + "/nope" })}, "404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			a, err := identity.NewOIDC(ctx, tt.issuers, identity.Options{})
			if err == nil {
				t.Fatalf("NewOIDC succeeded: %v", a)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "identity.NewOIDC: ") {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestJWKSURLSkipsDiscovery: with jwks_url set, discovery is not fetched.
func TestJWKSURLSkipsDiscovery(t *testing.T) {
	iss := newTestIssuer(t)
	cfg := iss.config()
	cfg.JWKSURL = iss.URL + "/keys"
	auth := newAuth(t, newClock(), nil, identity.Options{}, cfg)
	if _, err := auth.Verify(context.Background(), iss.sign(t, iss.claims(time.Now()))); err != nil {
		t.Fatal(err)
	}
	if d, k := iss.discHits.Load(), iss.jwksHits.Load(); d != 0 || k != 1 {
		t.Fatalf("discovery fetched %d times, JWKS %d; want 0 and 1", d, k)
	}
}

// TestDevIssuerInterop checks the development issuer against go-oidc's own
// discovery and verifier, so its tokens are what other OIDC code expects.
func TestDevIssuerInterop(t *testing.T) {
	iss := identitytest.NewIssuer(t)
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, iss.URL)
	if err != nil {
		t.Fatal(err)
	}
	tok := iss.Token(t, "agent-7", map[string]any{"groups": []string{"a"}}, time.Minute)
	idt, err := p.Verifier(&oidc.Config{ClientID: identitytest.Audience}).Verify(ctx, tok)
	if err != nil {
		t.Fatalf("go-oidc rejects a dev token: %v", err)
	}
	if idt.Subject != "agent-7" {
		t.Fatalf("Subject = %q", idt.Subject)
	}

	auth := newAuth(t, nil, nil, identity.Options{}, iss.Config)
	pr, err := auth.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Subject != "agent-7" || !slices.Equal(pr.Groups, []string{"a"}) || pr.TokenID == "" {
		t.Fatalf("principal %+v", pr)
	}
	// Mint's own claims win over the map's.
	tok = iss.Token(t, "agent-8", map[string]any{"sub": "root", "aud": "other", "exp": 1}, time.Minute)
	if pr, err = auth.Verify(ctx, tok); err != nil || pr.Subject != "agent-8" {
		t.Fatalf("Mint with reserved claims in the map: %+v, %v", pr, err)
	}
}

func TestHTTPClientUsed(t *testing.T) {
	iss := newTestIssuer(t)
	var calls int
	var mu sync.Mutex
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		return http.DefaultTransport.RoundTrip(r)
	})}
	newAuth(t, nil, nil, identity.Options{HTTPClient: client}, iss.config())
	if calls != 2 {
		t.Fatalf("Options.HTTPClient made %d requests, want 2 (discovery, JWKS)", calls)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustP521(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// devKey returns the private key a test issuer started with.
func devKey(t *testing.T, ti *testIssuer) *ecdsa.PrivateKey {
	t.Helper()
	return ti.key
}

// TestCAFile: an https issuer whose certificate is trusted only through
// the issuer's ca_file.
func TestCAFile(t *testing.T) {
	dev, err := identity.NewDevIssuer()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	url := "https://" + srv.Listener.Addr().String()
	srv.Config.Handler = dev.Handler(url)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below is expected
	srv.StartTLS()
	defer srv.Close()
	cfg := config.OIDCIssuer{Issuer: url, Audience: audience}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := identity.NewOIDC(ctx, []config.OIDCIssuer{cfg}, identity.Options{}); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without ca_file: err = %v, want a certificate error", err)
	}

	cfg.CAFile = filepath.Join(t.TempDir(), "ca.pem")
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(cfg.CAFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	auth, err := identity.NewOIDC(ctx, []config.OIDCIssuer{cfg}, identity.Options{})
	if err != nil {
		t.Fatalf("with ca_file: %v", err)
	}
	tok, err := dev.Mint(url, audience, "agent-1", nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
}
