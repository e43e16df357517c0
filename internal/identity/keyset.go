package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// maxJWKSBytes bounds a JWKS response. Real key sets are a few KiB; the
// bound keeps a broken or hostile endpoint from making warden buffer
// without limit.
const maxJWKSBytes = 1 << 20

// minRSABits is the smallest RSA modulus accepted: RFC 7518 §3.3 says keys
// of 2048 bits or larger MUST be used with RS*/PS*.
const minRSABits = 2048

// keysMaxAge is how long a fetched key set is trusted without a refresh.
// Unknown kids trigger refreshes on their own (that is how rotation is
// noticed); this bound is for the opposite case, a key the issuer has
// withdrawn, which no token would ever prompt us to notice.
const keysMaxAge = time.Hour

// errRefreshLimited means a refresh was wanted but the per-issuer rate
// limit had been used up.
var errRefreshLimited = errors.New("refresh rate-limited")

// keySet is one issuer's JSON Web Key Set (RFC 7517 §5), fetched from its
// jwks_uri.
//
// It replaces go-oidc's RemoteKeySet, which refetches the set for every
// token with an unseen "kid": a flood of tokens with random kids would
// turn warden into an amplifier against the IdP. Here fetches are
// single-flight and at most one starts per refreshEvery.
type keySet struct {
	url          string
	client       *http.Client
	log          *slog.Logger
	now          func() time.Time
	refreshEvery time.Duration
	fetches      *atomic.Uint64 // shared counter, for Stats

	// sem is held for the whole of a fetch, so concurrent callers wait
	// for one fetch instead of starting their own. It is a channel, not
	// a mutex, so a waiter can give up when its context ends.
	sem chan struct{}

	mu          sync.Mutex
	keys        map[string][]jose.JSONWebKey // by kid; "" for keys without one
	fetchedAt   time.Time                    // last successful fetch
	lastAttempt time.Time                    // last fetch started, successful or not
}

func newKeySet(url string, client *http.Client, log *slog.Logger, now func() time.Time, every time.Duration, fetches *atomic.Uint64) *keySet {
	return &keySet{
		url:          url,
		client:       client,
		log:          log,
		now:          now,
		refreshEvery: every,
		fetches:      fetches,
		sem:          make(chan struct{}, 1),
	}
}

// candidates returns the keys that may have signed a token with this kid
// and alg, fetching the set again if the kid is unknown (and the rate
// limit allows) or the set is older than keysMaxAge.
//
// The error is a *VerifyError: ReasonUnknownKey or ReasonJWKSUnavailable.
func (ks *keySet) candidates(ctx context.Context, kid, alg string) ([]jose.JSONWebKey, error) {
	keys, known, stale := ks.lookup(kid, alg)
	if known && !stale {
		return keys, nil
	}
	// A stale set that has the key is refreshed only if no other fetch
	// is running: requests must not queue behind a slow IdP when the key
	// they need is at hand. An unknown kid waits for the running fetch,
	// which may be the one that brings it.
	err := ks.refresh(ctx, !known)
	switch {
	case err == nil:
		keys, known, _ = ks.lookup(kid, alg)
	case known:
		// Stale but usable: an unreachable IdP is not evidence that a
		// key was withdrawn, so keep verifying with what we have.
		if !errors.Is(err, errRefreshLimited) {
			ks.log.Warn("identity: JWKS refresh failed; keeping previous keys", "jwks_url", ks.url, "err", err)
		}
		return keys, nil
	case errors.Is(err, errRefreshLimited):
		// Another caller may have just fetched the key we want.
		keys, known, _ = ks.lookup(kid, alg)
	default:
		return nil, &VerifyError{Reason: ReasonJWKSUnavailable, Err: fmt.Errorf("identity.keySet: %w", err)}
	}
	if !known {
		if kid == "" {
			return nil, reject(ReasonUnknownKey, "identity.keySet: token has no kid and no key fits alg %s", alg)
		}
		return nil, reject(ReasonUnknownKey, "identity.keySet: no key with kid %s for alg %s", quoteUntrusted(kid), alg)
	}
	return keys, nil
}

// lookup reports the keys that fit kid and alg, whether there were any,
// and whether the set is due for a refresh. A token without a kid may be
// verified by any key that fits its alg (RFC 7515 §4.1.4 makes kid
// optional); it counts as unknown, and may prompt a rate-limited refresh,
// only when no key fits its alg at all.
func (ks *keySet) lookup(kid, alg string) (keys []jose.JSONWebKey, known, stale bool) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	stale = ks.now().Sub(ks.fetchedAt) > keysMaxAge
	if kid == "" {
		for _, byKid := range ks.keys {
			for _, k := range byKid {
				if keyFitsAlg(k, alg) {
					keys = append(keys, k)
				}
			}
		}
		return keys, len(keys) > 0, stale
	}
	byKid, ok := ks.keys[kid]
	if !ok {
		return nil, false, stale
	}
	for _, k := range byKid {
		if keyFitsAlg(k, alg) {
			keys = append(keys, k)
		}
	}
	// A kid we know but whose keys do not fit alg is still "known": the
	// signature check then fails, and refetching would not help.
	return keys, true, stale
}

// refresh fetches the key set unless one was started less than
// refreshEvery ago. If another fetch is running, refresh waits for it
// (and then finds the rate limit spent) or, with wait false, returns
// errRefreshLimited at once.
func (ks *keySet) refresh(ctx context.Context, wait bool) error {
	if wait {
		select {
		case ks.sem <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("waiting for JWKS fetch: %w", ctx.Err())
		}
	} else {
		select {
		case ks.sem <- struct{}{}:
		default:
			return errRefreshLimited
		}
	}
	defer func() { <-ks.sem }()

	ks.mu.Lock()
	now := ks.now()
	if !ks.lastAttempt.IsZero() && now.Sub(ks.lastAttempt) < ks.refreshEvery {
		ks.mu.Unlock()
		return errRefreshLimited
	}
	ks.lastAttempt = now
	ks.mu.Unlock()

	keys, err := ks.fetch(ctx)
	if err != nil {
		return err
	}
	ks.mu.Lock()
	ks.keys = keys
	ks.fetchedAt = ks.now()
	ks.mu.Unlock()
	return nil
}

// fetch GETs and parses the JWKS. Keys warden cannot or must not use are
// skipped, as RFC 7517 §5 asks, rather than failing the whole set.
func (ks *keySet) fetch(ctx context.Context) (map[string][]jose.JSONWebKey, error) {
	ks.fetches.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS %s: read body: %w", ks.url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch JWKS %s: HTTP status %s", ks.url, resp.Status)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("fetch JWKS %s: body larger than %d bytes", ks.url, maxJWKSBytes)
	}
	keys, err := parseJWKS(body, ks.log)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS %s: %w", ks.url, err)
	}
	return keys, nil
}

// parseJWKS decodes a JWK Set, keeping only public signature keys of
// algorithms warden accepts.
func parseJWKS(body []byte, log *slog.Logger) (map[string][]jose.JSONWebKey, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	keys := make(map[string][]jose.JSONWebKey)
	for i, rk := range raw.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(rk); err != nil {
			log.Debug("identity: skipping unusable JWK", "index", i, "err", err)
			continue
		}
		if reason := unusableKey(&k); reason != "" {
			log.Debug("identity: skipping JWK", "index", i, "kid", k.KeyID, "why", reason)
			continue
		}
		pub := k.Public() // drop private parameters an IdP should never publish
		keys[k.KeyID] = append(keys[k.KeyID], pub)
	}
	return keys, nil
}

// unusableKey says why k must not verify tokens, or "" if it may.
func unusableKey(k *jose.JSONWebKey) string {
	// RFC 7517 §4.2: a key whose "use" is "enc" is not for signatures.
	if k.Use != "" && k.Use != "sig" {
		return "use is " + k.Use
	}
	if k.Algorithm != "" && !allowedAlg(k.Algorithm) {
		return "alg " + k.Algorithm + " not accepted"
	}
	switch key := k.Key.(type) {
	case *rsa.PublicKey:
		if key.N.BitLen() < minRSABits {
			return "RSA key shorter than 2048 bits"
		}
	case *rsa.PrivateKey:
		if key.N.BitLen() < minRSABits {
			return "RSA key shorter than 2048 bits"
		}
	case *ecdsa.PublicKey, *ecdsa.PrivateKey, ed25519.PublicKey, ed25519.PrivateKey:
	default:
		// Symmetric ("oct") keys above all: a JWKS is public, so an HMAC
		// key in it is a key anyone can sign with.
		return fmt.Sprintf("key type %T", k.Key)
	}
	return ""
}

// keyFitsAlg reports whether k may verify a signature made with alg.
// RFC 8725 §3.1: each key is used with exactly one algorithm, so a key
// that names its "alg" is not tried with another, and key types must
// match the algorithm family.
func keyFitsAlg(k jose.JSONWebKey, alg string) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	switch jose.SignatureAlgorithm(alg) {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256:
		_, ok := k.Key.(*rsa.PublicKey)
		return ok
	case jose.ES256:
		key, ok := k.Key.(*ecdsa.PublicKey)
		return ok && key.Curve == elliptic.P256()
	case jose.ES384:
		key, ok := k.Key.(*ecdsa.PublicKey)
		return ok && key.Curve == elliptic.P384()
	case jose.EdDSA:
		_, ok := k.Key.(ed25519.PublicKey)
		return ok
	}
	return false
}
