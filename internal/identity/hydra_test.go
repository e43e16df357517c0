package identity_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/identity/identitytest"
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
	bin := identitytest.HydraBinary(t)
	start := time.Now()
	h := identitytest.StartHydra(t, bin)
	t.Logf("hydra ready after %s", time.Since(start).Round(time.Millisecond))

	wardenClient := h.CreateClient(t, "agent", "warden")
	otherClient := h.CreateClient(t, "other-service", "other")

	// Fetch the tokens before building the Authenticator: Hydra creates
	// its access-token signing key on first use, and a key that appears
	// after start-up is picked up only once the refresh rate limit allows.
	t.Logf("clients created after %s", time.Since(start).Round(time.Millisecond))
	tok := h.Token(t, wardenClient, "warden")
	t.Logf("first token after %s", time.Since(start).Round(time.Millisecond))
	otherTok := h.Token(t, otherClient, "other")
	noAudTok := h.Token(t, wardenClient, "")

	// Use exactly the issuer Hydra announces (no trailing slash in v2,
	// but the point is not to guess): it must equal "iss" byte for byte.
	var disc struct {
		Issuer string `json:"issuer"`
	}
	h.GetJSON(t, h.Public+"/.well-known/openid-configuration", &disc)
	if disc.Issuer != h.Public {
		t.Logf("Hydra's issuer is %q (configured %q)", disc.Issuer, h.Public)
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
