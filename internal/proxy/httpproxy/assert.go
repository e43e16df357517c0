package httpproxy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/warden-gateway/warden/internal/identity"
)

// JWKSPath is where warden publishes the public key of its identity
// assertions, on the http listener.
const JWKSPath = "/.well-known/warden/jwks.json"

// AssertionIssuer is the "iss" of warden's identity assertions.
const AssertionIssuer = "warden"

// Asserter signs the identity assertion warden adds to every request it
// forwards to an http target: a short-lived JWT saying who called (subject,
// groups, the agent token's issuer) and for which target. A backend
// verifies it with the key at JWKSPath and so never has to trust a
// client-supplied header. An assertion is reused for the same identity and
// target until half its lifetime has passed: signing is the costliest step
// of a forwarded request.
type Asserter struct {
	signer jose.Signer
	jwks   []byte
	kid    string
	ttl    time.Duration

	mu    sync.Mutex
	cache map[assertionKey]cachedAssertion
}

type assertionKey struct{ iss, sub, tokenID, target string }

type cachedAssertion struct {
	jwt     string
	renewAt time.Time
}

// maxCachedAssertions bounds the cache; past it, it is emptied.
const maxCachedAssertions = 10000

// Assertion is the claims of an identity assertion.
type Assertion struct {
	jwt.Claims
	Groups  []string `json:"groups,omitempty"`
	Target  string   `json:"target"`
	OrigIss string   `json:"orig_iss"` // the agent token's issuer
}

// NewAsserter loads the PEM private key at keyFile (EC, RSA or Ed25519),
// or generates an EC P-256 key when keyFile is empty.
func NewAsserter(keyFile string, ttl time.Duration) (*Asserter, error) {
	var key crypto.Signer
	if keyFile == "" {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		key = k
	} else {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, fmt.Errorf("assertion key: %w", err)
		}
		if key, err = parseKey(b); err != nil {
			return nil, fmt.Errorf("assertion key %s: %w", keyFile, err)
		}
	}
	var alg jose.SignatureAlgorithm
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			alg = jose.ES256
		case elliptic.P384():
			alg = jose.ES384
		default:
			alg = jose.ES512
		}
	case *rsa.PrivateKey:
		alg = jose.RS256
	case ed25519.PrivateKey:
		alg = jose.EdDSA
	default:
		return nil, errors.New("assertion key: unsupported key type")
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	kid := hex.EncodeToString(sum[:8])
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(alg)}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: kid, Algorithm: string(alg), Use: "sig"}}})
	if err != nil {
		return nil, err
	}
	if ttl <= 0 {
		ttl = time.Minute
	}
	return &Asserter{signer: signer, jwks: jwks, kid: kid, ttl: ttl, cache: map[assertionKey]cachedAssertion{}}, nil
}

func parseKey(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	if k, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
	}
	if k, err := x509.ParseECPrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("not a PKCS#8, EC or PKCS#1 private key")
}

// Sign returns the assertion of p's calls to target: a cached one while
// it has more than half its lifetime left (and the agent token is still
// valid that long), else a new one.
func (a *Asserter) Sign(p *identity.Principal, target string, now time.Time) (string, error) {
	k := assertionKey{p.Issuer, p.Subject, p.TokenID, target}
	a.mu.Lock()
	c, ok := a.cache[k]
	a.mu.Unlock()
	if ok && now.Before(c.renewAt) {
		return c.jwt, nil
	}
	exp := now.Add(a.ttl)
	if !p.Expiry.IsZero() && p.Expiry.Before(exp) {
		exp = p.Expiry // never outlive the agent's own token
	}
	claims := Assertion{
		Claims: jwt.Claims{
			Issuer:    AssertionIssuer,
			Subject:   p.Subject,
			Audience:  jwt.Audience{target},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-5 * time.Second)),
			Expiry:    jwt.NewNumericDate(exp),
		},
		Groups: p.Groups, Target: target, OrigIss: p.Issuer,
	}
	var id [12]byte
	rand.Read(id[:])
	claims.ID = hex.EncodeToString(id[:])
	tok, err := jwt.Signed(a.signer).Claims(claims).Serialize()
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	if len(a.cache) >= maxCachedAssertions {
		clear(a.cache)
	}
	a.cache[k] = cachedAssertion{jwt: tok, renewAt: now.Add(exp.Sub(now) / 2)}
	a.mu.Unlock()
	return tok, nil
}

// ServeJWKS serves the public key set.
func (a *Asserter) ServeJWKS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "max-age=300")
	w.Write(a.jwks)
}

// JWKS returns the public key set, as served.
func (a *Asserter) JWKS() []byte { return a.jwks }
