package identity

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/warden-gateway/warden/internal/config"
)

// Defaults for Options and config.OIDCIssuer fields left zero.
const (
	DefaultCacheSize       = 10000
	DefaultCacheTTL        = 5 * time.Minute
	DefaultRefreshInterval = 10 * time.Second
	DefaultLeeway          = 30 * time.Second
	DefaultGroupsClaim     = "groups"

	// MaxLeeway is the largest clock skew a config may allow.
	MaxLeeway = 5 * time.Minute

	// MaxTokenBytes bounds a presented token. Large IdP tokens with many
	// groups reach a few KiB; anything past this is refused before any
	// base64 or JSON decoding, so unauthenticated input costs bounded work.
	MaxTokenBytes = 16 << 10

	defaultHTTPTimeout = 10 * time.Second
)

// acceptedAlgs are the only JWS algorithms warden verifies: asymmetric
// ones, so a verifier never holds a key that can also sign. "none" and
// HS256/384/512 are absent on purpose: "none" is unsigned, and with HS*
// the classic confusion attack signs a token using the issuer's *public*
// key as the HMAC secret (RFC 8725 §2.1, §3.1; RFC 7518 §3.1).
var acceptedAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.ES256, jose.ES384,
	jose.PS256,
	jose.EdDSA,
}

func allowedAlg(alg string) bool {
	for _, a := range acceptedAlgs {
		if string(a) == alg {
			return true
		}
	}
	return false
}

// Options tune an Authenticator. The zero value is ready to use.
type Options struct {
	// HTTPClient fetches discovery documents and key sets. Default: a
	// client with a 10s timeout. An issuer with ca_file gets a copy whose
	// transport trusts only that bundle.
	HTTPClient *http.Client
	// Logger receives key-refresh warnings and, at debug level, the reason
	// for each rejected token. Tokens are never logged. Default: discard.
	Logger *slog.Logger
	// Now is the clock for exp/nbf/iat, the cache and the refresh rate
	// limit. Default: time.Now. For tests.
	Now func() time.Time
	// CacheSize bounds the number of verified tokens remembered. Default
	// DefaultCacheSize; negative disables the cache.
	CacheSize int
	// CacheTTL is the longest a verified token is remembered (never past
	// its exp). It bounds how long a withdrawn key still authenticates a
	// token verified before. Default DefaultCacheTTL.
	CacheTTL time.Duration
	// RefreshInterval is the least time between two JWKS fetches for one
	// issuer, however many tokens with unknown kids arrive. Default
	// DefaultRefreshInterval.
	RefreshInterval time.Duration
}

// Authenticator verifies OIDC/JWT access tokens from a fixed set of
// issuers. It implements Verifier and is safe for concurrent use. It owns
// no goroutines; JWKS fetches run on the calling goroutine.
type Authenticator struct {
	issuers map[string]*issuer // by exact "iss"
	cache   *tokenCache        // nil when disabled
	log     *slog.Logger
	now     func() time.Time

	cacheHits   atomic.Uint64
	sigChecks   atomic.Uint64
	jwksFetches atomic.Uint64
}

// issuer is one configured issuer, resolved at start-up.
type issuer struct {
	iss         string
	audience    string
	groupsClaim string
	leeway      time.Duration
	keys        *keySet
}

// Stats are counters since the Authenticator was built.
type Stats struct {
	CacheHits       uint64 // tokens answered from the cache
	SignatureChecks uint64 // tokens whose signature was checked against a key
	JWKSFetches     uint64 // JWKS fetches started, the start-up ones included
	CachedTokens    int    // entries in the cache now
}

// Stats returns the Authenticator's counters.
func (a *Authenticator) Stats() Stats {
	return Stats{
		CacheHits:       a.cacheHits.Load(),
		SignatureChecks: a.sigChecks.Load(),
		JWKSFetches:     a.jwksFetches.Load(),
		CachedTokens:    a.cache.len(),
	}
}

// NewOIDC resolves every issuer — OpenID Connect discovery through go-oidc
// unless jwks_url is set, then a first JWKS fetch — and returns an
// Authenticator. It fails if any issuer cannot be reached: starting with an
// issuer whose tokens would all be refused helps nobody, and the error
// names the issuer.
//
// Issuer and JWKS URLs must be https, except on loopback hosts (the
// development issuer, tests): key material fetched over plaintext HTTP is
// key material anyone on the path can replace.
//
// An issuer's CAFile is read as given; resolve it against the config file
// first (config.Config.Resolve). Zero Leeway and GroupsClaim take the
// defaults (30s, "groups"), so unvalidated configs work too.
func NewOIDC(ctx context.Context, issuers []config.OIDCIssuer, opts Options) (*Authenticator, error) {
	if len(issuers) == 0 {
		return nil, errors.New("identity.NewOIDC: no OIDC issuers configured")
	}
	a := &Authenticator{
		issuers: make(map[string]*issuer, len(issuers)),
		log:     opts.Logger,
		now:     opts.Now,
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: defaultHTTPTimeout}
	}
	every := opts.RefreshInterval
	if every <= 0 {
		every = DefaultRefreshInterval
	}
	if size := opts.CacheSize; size >= 0 {
		if size == 0 {
			size = DefaultCacheSize
		}
		ttl := opts.CacheTTL
		if ttl <= 0 {
			ttl = DefaultCacheTTL
		}
		a.cache = newTokenCache(size, ttl)
	}

	for i, ic := range issuers {
		if _, dup := a.issuers[ic.Issuer]; dup {
			return nil, fmt.Errorf("identity.NewOIDC: issuer %q listed twice", ic.Issuer)
		}
		is, err := a.resolve(ctx, ic, client, every)
		if err != nil {
			return nil, fmt.Errorf("identity.NewOIDC: issuer %d (%q): %w", i, ic.Issuer, err)
		}
		a.issuers[ic.Issuer] = is
	}
	return a, nil
}

// resolve checks one issuer's config, discovers its jwks_uri and loads its
// keys.
func (a *Authenticator) resolve(ctx context.Context, ic config.OIDCIssuer, client *http.Client, every time.Duration) (*issuer, error) {
	is := &issuer{
		iss:         ic.Issuer,
		audience:    ic.Audience,
		groupsClaim: ic.GroupsClaim,
		leeway:      ic.Leeway,
	}
	if err := checkFetchURL(ic.Issuer); err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	if is.audience == "" {
		return nil, errors.New("audience is required")
	}
	if is.groupsClaim == "" {
		is.groupsClaim = DefaultGroupsClaim
	}
	switch {
	case is.leeway == 0:
		is.leeway = DefaultLeeway
	case is.leeway < 0 || is.leeway > MaxLeeway:
		return nil, fmt.Errorf("leeway %s outside [0, %s]", is.leeway, MaxLeeway)
	}
	if ic.CAFile != "" {
		var err error
		if client, err = clientWithCA(client, ic.CAFile); err != nil {
			return nil, err
		}
	}

	jwksURL := ic.JWKSURL
	if jwksURL == "" {
		// go-oidc checks that the discovery document's "issuer" is
		// exactly ours (OpenID Connect Discovery 1.0 §4.3), which is what
		// stops one issuer from speaking for another.
		p, err := oidc.NewProvider(oidc.ClientContext(ctx, client), ic.Issuer)
		if err != nil {
			return nil, fmt.Errorf("discovery: %w", err)
		}
		var meta struct {
			JWKSURI string `json:"jwks_uri"`
		}
		if err := p.Claims(&meta); err != nil {
			return nil, fmt.Errorf("discovery: %w", err)
		}
		if meta.JWKSURI == "" {
			return nil, errors.New("discovery: document has no jwks_uri")
		}
		jwksURL = meta.JWKSURI
	}
	if err := checkFetchURL(jwksURL); err != nil {
		return nil, fmt.Errorf("jwks_uri: %w", err)
	}

	is.keys = newKeySet(jwksURL, client, a.log.With("issuer", ic.Issuer), a.now, every, &a.jwksFetches)
	if err := is.keys.refresh(ctx, true); err != nil {
		return nil, err
	}
	return is, nil
}

// checkFetchURL accepts absolute https URLs, and http ones on loopback.
func checkFetchURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q: plain http is allowed only on loopback", raw)
	}
	return fmt.Errorf("%q: scheme must be https", raw)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// clientWithCA returns a copy of base whose transport trusts only the
// certificates in caFile.
func clientWithCA(base *http.Client, caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s: no PEM certificates", caFile)
	}
	var tr *http.Transport
	if t, ok := base.Transport.(*http.Transport); ok {
		tr = t.Clone()
	} else if base.Transport == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	} else {
		return nil, fmt.Errorf("ca_file %s: HTTPClient transport %T cannot take a CA bundle", caFile, base.Transport)
	}
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tr.TLSClientConfig.RootCAs = pool
	c := *base
	c.Transport = tr
	return &c, nil
}

// Verify implements Verifier. Every failure is a *VerifyError.
//
// The order matters: bound the input, then the cache (keyed by a hash, so
// a hit proves the exact bytes were verified before), then the header
// (alg allowlist), then the *unverified* "iss" only to choose whose keys
// to use, then the signature, and only then any claim is believed.
func (a *Authenticator) Verify(ctx context.Context, rawToken string) (*Principal, error) {
	p, err := a.verify(ctx, rawToken)
	if err != nil {
		a.log.Debug("identity: token rejected", "reason", ReasonOf(err), "err", err)
		return nil, err
	}
	return p, nil
}

func (a *Authenticator) verify(ctx context.Context, raw string) (*Principal, error) {
	if raw == "" {
		return nil, reject(ReasonMalformed, "identity.Verify: empty token")
	}
	if len(raw) > MaxTokenBytes {
		return nil, reject(ReasonMalformed, "identity.Verify: token of %d bytes exceeds %d", len(raw), MaxTokenBytes)
	}
	now := a.now()
	key := sha256.Sum256([]byte(raw))
	if p := a.cache.get(key, now); p != nil {
		a.cacheHits.Add(1)
		return p, nil
	}

	// Compact serialization only (RFC 7519 §7.2 step 1): a JWT is never
	// the JWS JSON serialization, and a five-part JWE is not accepted.
	// go-jose enforces the alg allowlist here, before any key is touched.
	jws, err := jose.ParseSignedCompact(raw, acceptedAlgs)
	if err != nil {
		var algErr *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &algErr) {
			return nil, reject(ReasonUnsupportedAlg, "identity.Verify: alg %s not accepted", quoteUntrusted(string(algErr.Got)))
		}
		return nil, &VerifyError{Reason: ReasonMalformed, Err: fmt.Errorf("identity.Verify: parse JWS: %w", err)}
	}
	if len(jws.Signatures) != 1 {
		return nil, reject(ReasonMalformed, "identity.Verify: %d signatures, want 1", len(jws.Signatures))
	}
	hdr := jws.Signatures[0].Header
	// RFC 7515 §4.1.11: a recipient must reject a JWS whose "crit" lists
	// an extension it does not understand. Warden understands none. (go-jose
	// would refuse it in Verify too, but that would read as a bad signature.)
	if _, ok := hdr.ExtraHeaders["crit"]; ok {
		return nil, reject(ReasonMalformed, "identity.Verify: crit header not supported")
	}

	// Choose the issuer from the unverified payload. Nothing else is read
	// from it before the signature checks out with that issuer's keys.
	var unverified struct {
		Issuer *string `json:"iss"`
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &unverified); err != nil {
		return nil, &VerifyError{Reason: ReasonMalformed, Err: fmt.Errorf("identity.Verify: payload: %w", err)}
	}
	if unverified.Issuer == nil {
		return nil, reject(ReasonUnknownIssuer, "identity.Verify: no iss claim")
	}
	is, ok := a.issuers[*unverified.Issuer]
	if !ok {
		return nil, reject(ReasonUnknownIssuer, "identity.Verify: issuer %s not trusted", quoteUntrusted(*unverified.Issuer))
	}

	payload, err := is.verifySignature(ctx, jws, hdr, &a.sigChecks)
	if err != nil {
		return nil, err
	}
	p, err := is.principal(payload, now)
	if err != nil {
		return nil, err
	}
	a.cache.put(key, p, now)
	return p, nil
}

// verifySignature checks the JWS against the issuer's keys that fit its
// kid and alg, and returns the verified payload.
func (is *issuer) verifySignature(ctx context.Context, jws *jose.JSONWebSignature, hdr jose.Header, checks *atomic.Uint64) ([]byte, error) {
	keys, err := is.keys.candidates(ctx, hdr.KeyID, hdr.Algorithm)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, reject(ReasonBadSignature, "identity.Verify: key %s does not fit alg %s", quoteUntrusted(hdr.KeyID), hdr.Algorithm)
	}
	checks.Add(1)
	for i := range keys {
		// The key comes from our JWKS, never from the token's own
		// "jwk"/"jku"/"x5u" headers (RFC 8725 §3.10).
		if payload, err := jws.Verify(&keys[i]); err == nil {
			return payload, nil
		}
	}
	return nil, reject(ReasonBadSignature, "identity.Verify: signature does not verify with key %s", quoteUntrusted(hdr.KeyID))
}

// principal validates the verified claims (RFC 7519 §7.2 step 10, RFC 8725
// §3.8–3.9) and builds the Principal.
func (is *issuer) principal(payload []byte, now time.Time) (*Principal, error) {
	var std jwt.Claims
	if err := json.Unmarshal(payload, &std); err != nil {
		return nil, &VerifyError{Reason: ReasonInvalidClaim, Err: fmt.Errorf("identity.Verify: registered claims: %w", err)}
	}
	var all map[string]any
	if err := json.Unmarshal(payload, &all); err != nil {
		return nil, &VerifyError{Reason: ReasonMalformed, Err: fmt.Errorf("identity.Verify: claims: %w", err)}
	}

	// iss was used to pick this issuer; check it again on the verified
	// claims so the choice never rests on unverified data alone.
	if std.Issuer != is.iss {
		return nil, reject(ReasonUnknownIssuer, "identity.Verify: verified iss %s differs from %q", quoteUntrusted(std.Issuer), is.iss)
	}
	if !std.Audience.Contains(is.audience) {
		return nil, reject(ReasonBadAudience, "identity.Verify: aud does not contain %q", is.audience)
	}
	if std.Expiry == nil {
		return nil, reject(ReasonMissingExpiry, "identity.Verify: no exp claim")
	}
	// go-jose applies the leeway to exp, nbf and iat alike.
	err := std.ValidateWithLeeway(jwt.Expected{Time: now}, is.leeway)
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrExpired):
		return nil, &VerifyError{Reason: ReasonExpired, Err: fmt.Errorf("identity.Verify: exp %s: %w", std.Expiry.Time().UTC().Format(time.RFC3339), err)}
	case errors.Is(err, jwt.ErrNotValidYet):
		return nil, &VerifyError{Reason: ReasonNotYetValid, Err: fmt.Errorf("identity.Verify: nbf %s: %w", std.NotBefore.Time().UTC().Format(time.RFC3339), err)}
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return nil, &VerifyError{Reason: ReasonIssuedInFuture, Err: fmt.Errorf("identity.Verify: iat %s: %w", std.IssuedAt.Time().UTC().Format(time.RFC3339), err)}
	default:
		return nil, &VerifyError{Reason: ReasonInvalidClaim, Err: fmt.Errorf("identity.Verify: %w", err)}
	}
	if std.Subject == "" {
		return nil, reject(ReasonMissingSubject, "identity.Verify: no sub claim")
	}
	groups, err := groupsFrom(all[is.groupsClaim])
	if err != nil {
		return nil, &VerifyError{Reason: ReasonInvalidClaim, Err: fmt.Errorf("identity.Verify: claim %q: %w", is.groupsClaim, err)}
	}
	return &Principal{
		Subject: std.Subject,
		Issuer:  std.Issuer,
		Groups:  groups,
		TokenID: std.ID,
		Expiry:  std.Expiry.Time(),
		Claims:  all,
	}, nil
}

// groupsFrom reads a groups claim: absent or null is no groups; a JSON
// array of strings is the groups; a single string is one group (it is not
// split on spaces or commas: a group name is what the IdP says it is).
// Anything else is an error, not an empty list: a claim we cannot read is
// not a claim we may ignore.
func groupsFrom(v any) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		if v == "" {
			return nil, nil
		}
		return []string{v}, nil
	case []any:
		groups := make([]string, 0, len(v))
		for i, g := range v {
			s, ok := g.(string)
			if !ok {
				return nil, fmt.Errorf("element %d is %T, want string", i, g)
			}
			groups = append(groups, s)
		}
		return groups, nil
	}
	return nil, fmt.Errorf("is %T, want string or array of strings", v)
}

var _ Verifier = (*Authenticator)(nil)
