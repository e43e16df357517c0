// Package identitytest gives other packages' tests a real OIDC issuer on
// loopback: a DevIssuer behind an httptest server that serves discovery and
// the JWKS, so that identity.NewOIDC trusts it through the same code path
// as a production IdP. It must not be imported by non-test code.
package identitytest

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/identity"
)

// Audience is the audience of Issuer.Config and of tokens from Token.
const Audience = "warden"

// Issuer is a running development issuer.
type Issuer struct {
	URL    string              // issuer URL, also the "iss" of its tokens
	Dev    *identity.DevIssuer // the signing key; Dev.Rotate, Dev.Sign for odd tokens
	Config config.OIDCIssuer   // trusts this issuer with audience "warden"
	Server *httptest.Server    // the loopback server, closed by t.Cleanup
}

// NewIssuer starts an issuer on a loopback port; it stops when the test
// ends.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	dev, err := identity.NewDevIssuer()
	if err != nil {
		t.Fatalf("identitytest.NewIssuer: %v", err)
	}
	// The handler needs its own URL, which is known once the listener
	// exists but before the server starts serving.
	srv := httptest.NewUnstartedServer(nil)
	url := "http://" + srv.Listener.Addr().String()
	srv.Config.Handler = dev.Handler(url)
	srv.Start()
	t.Cleanup(srv.Close)
	return &Issuer{
		URL:    url,
		Dev:    dev,
		Server: srv,
		Config: config.OIDCIssuer{Issuer: url, Audience: Audience},
	}
}

// Token mints a token for sub with audience "warden", valid for ttl.
func (i *Issuer) Token(t testing.TB, sub string, claims map[string]any, ttl time.Duration) string {
	t.Helper()
	tok, err := i.Dev.Mint(i.URL, Audience, sub, claims, ttl)
	if err != nil {
		t.Fatalf("identitytest.Issuer.Token: %v", err)
	}
	return tok
}
