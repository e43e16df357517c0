package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// DevIssuer is the development token issuer behind `warden token` and
// `warden demo`: an ECDSA P-256 key, a way to mint ES256 tokens with it,
// and an HTTP handler that publishes OpenID Connect discovery and the JWKS
// so that NewOIDC trusts it exactly as it would a real IdP.
//
// ES256 because every JWT library accepts it (Ed25519 is still missing
// from some), and the key ID is the key's RFC 7638 thumbprint, so the same
// key file always yields the same kid.
//
// It is for demonstrations and tests, never production: whoever can read
// the key file can be anyone.
type DevIssuer struct {
	mu        sync.RWMutex
	signing   devKey   // signs new tokens
	published []devKey // served in the JWKS, newest first; includes signing
}

type devKey struct {
	priv *ecdsa.PrivateKey
	kid  string
}

// NewDevIssuer returns a DevIssuer with a fresh in-memory key.
func NewDevIssuer() (*DevIssuer, error) {
	k, err := newDevKey()
	if err != nil {
		return nil, fmt.Errorf("identity.NewDevIssuer: %w", err)
	}
	return &DevIssuer{signing: k, published: []devKey{k}}, nil
}

// LoadOrCreateDevKey reads a PEM ECDSA P-256 private key (PKCS #8 or
// SEC 1) from path, or, if there is no file there, generates one and
// writes it as PKCS #8 with mode 0600 (creating the directory 0700).
func LoadOrCreateDevKey(path string) (*DevIssuer, error) {
	const op = "identity.LoadOrCreateDevKey"
	pemBytes, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createDevKeyFile(path); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		// Read back what is on disk now (ours, or that of a concurrent
		// process that won the race), so both agree on the key.
		pemBytes, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	priv, err := parseDevKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", op, path, err)
	}
	k, err := devKeyFrom(priv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return &DevIssuer{signing: k, published: []devKey{k}}, nil
}

// createDevKeyFile writes a new key to path, unless a file is already
// there. The key is written to a temporary file first and hard-linked into
// place: link(2) never replaces an existing file, and a concurrent reader
// never sees a half-written key.
func createDevKeyFile(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".devkey-*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Link(f.Name(), path)
}

func parseDevKey(pemBytes []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q, want PRIVATE KEY or EC PRIVATE KEY", block.Type)
	}
	if err != nil {
		return nil, err
	}
	priv, ok := key.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, fmt.Errorf("key is %T, want ECDSA P-256", key)
	}
	return priv, nil
}

func newDevKey() (devKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return devKey{}, err
	}
	return devKeyFrom(priv)
}

func devKeyFrom(priv *ecdsa.PrivateKey) (devKey, error) {
	jwk := jose.JSONWebKey{Key: priv.Public()}
	tp, err := jwk.Thumbprint(crypto.SHA256) // RFC 7638 §3
	if err != nil {
		return devKey{}, fmt.Errorf("thumbprint: %w", err)
	}
	return devKey{priv: priv, kid: base64.RawURLEncoding.EncodeToString(tp)}, nil
}

// KeyID returns the kid of the key that signs new tokens.
func (d *DevIssuer) KeyID() string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.signing.kid
}

// PublicKey returns the public half of the signing key.
func (d *DevIssuer) PublicKey() *ecdsa.PublicKey {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return &d.signing.priv.PublicKey
}

// Rotate switches to a fresh in-memory key, as an IdP rotates: the new key
// signs from now on, and the JWKS publishes both, newest first, so tokens
// signed before stay verifiable. The key file is not rewritten.
func (d *DevIssuer) Rotate() error {
	k, err := newDevKey()
	if err != nil {
		return fmt.Errorf("identity.DevIssuer.Rotate: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.signing = k
	d.published = append([]devKey{k}, d.published...)
	return nil
}

// Mint returns an ES256 JWT for subject, valid for ttl from now, with iss,
// aud, sub, iat, nbf, exp and a random jti set by Mint; claims adds the
// rest (groups, scopes, ...). If claims names one of those seven, Mint's
// value wins.
func (d *DevIssuer) Mint(issuer, audience, subject string, claims map[string]any, ttl time.Duration) (string, error) {
	const op = "identity.DevIssuer.Mint"
	switch {
	case issuer == "":
		return "", fmt.Errorf("%s: issuer is required", op)
	case audience == "":
		return "", fmt.Errorf("%s: audience is required", op)
	case subject == "":
		return "", fmt.Errorf("%s: subject is required", op)
	case ttl <= 0:
		return "", fmt.Errorf("%s: ttl %s must be positive", op, ttl)
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	now := time.Now()
	all := make(map[string]any, len(claims)+7)
	for k, v := range claims {
		all[k] = v
	}
	all["iss"] = issuer
	all["aud"] = audience
	all["sub"] = subject
	all["iat"] = now.Unix()
	all["nbf"] = now.Unix()
	all["exp"] = now.Add(ttl).Unix()
	all["jti"] = base64.RawURLEncoding.EncodeToString(jti[:])
	tok, err := d.Sign(all)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	return tok, nil
}

// Sign returns a compact ES256 JWS over exactly these claims, with the
// signing key's kid and typ "JWT". Unlike Mint it adds and checks
// nothing, so tests can build tokens that are validly signed yet wrong.
func (d *DevIssuer) Sign(claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("identity.DevIssuer.Sign: %w", err)
	}
	d.mu.RLock()
	k := d.signing
	d.mu.RUnlock()
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return "", fmt.Errorf("identity.DevIssuer.Sign: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("identity.DevIssuer.Sign: %w", err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("identity.DevIssuer.Sign: %w", err)
	}
	return tok, nil
}

// JWKS returns the published key set as JSON (RFC 7517 §5).
func (d *DevIssuer) JWKS() []byte {
	d.mu.RLock()
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(d.published))}
	for _, k := range d.published {
		set.Keys = append(set.Keys, jose.JSONWebKey{
			Key:       k.priv.Public(),
			KeyID:     k.kid,
			Algorithm: string(jose.ES256),
			Use:       "sig",
		})
	}
	d.mu.RUnlock()
	b, err := json.Marshal(set)
	if err != nil {
		// Marshaling a P-256 public key cannot fail.
		panic("identity.DevIssuer.JWKS: " + err.Error())
	}
	return b
}

// Handler serves, for the issuer at issuerURL:
//
//	<path>/.well-known/openid-configuration   discovery (OpenID Connect Discovery 1.0 §4)
//	<path>/keys                               the JWKS
//
// where <path> is issuerURL's path, so the handler can be mounted as is
// on a shared mux. Only GET and HEAD are answered.
func (d *DevIssuer) Handler(issuerURL string) http.Handler {
	base := ""
	if u, err := url.Parse(issuerURL); err == nil {
		base = strings.TrimSuffix(u.Path, "/")
	}
	jwksURI := strings.TrimSuffix(issuerURL, "/") + "/keys"
	discovery, err := json.Marshal(map[string]any{
		"issuer":                                issuerURL,
		"jwks_uri":                              jwksURI,
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{string(jose.ES256)},
		"grant_types_supported":                 []string{},
		"claims_supported":                      []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "groups"},
	})
	if err != nil {
		panic("identity.DevIssuer.Handler: " + err.Error())
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET "+base+"/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(discovery)
	})
	mux.HandleFunc("GET "+base+"/keys", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "max-age=60")
		w.Write(d.JWKS())
	})
	return mux
}

// registeredClaims are the claims Mint sets itself.
var registeredClaims = map[string]bool{
	"iss": true, "aud": true, "sub": true, "exp": true, "nbf": true, "iat": true, "jti": true,
}

// ParseClaimFlags turns repeated `--claim key=value` flags into claims for
// Mint. The rule is simple on purpose:
//
//   - The value is everything after the first "=", taken verbatim: it is
//     never split on commas or spaces, never parsed as a number or bool.
//   - "groups" is always an array, even when given once.
//   - Any other key is a string when given once and an array of strings
//     (in flag order) when given more than once.
//
// Keys Mint sets itself (iss, aud, sub, exp, nbf, iat, jti) are refused, as
// are a missing "=", an empty key, and an empty group.
//
//	ParseClaimFlags([]string{"groups=analysts", "team=data", "scope=a b"})
//	// {"groups": ["analysts"], "team": "data", "scope": "a b"}
func ParseClaimFlags(kvs []string) (map[string]any, error) {
	const op = "identity.ParseClaimFlags"
	lists := make(map[string][]string)
	for _, kv := range kvs {
		key, value, ok := strings.Cut(kv, "=")
		switch {
		case !ok:
			return nil, fmt.Errorf("%s: %q is not key=value", op, kv)
		case key == "":
			return nil, fmt.Errorf("%s: %q has an empty key", op, kv)
		case registeredClaims[key]:
			return nil, fmt.Errorf("%s: claim %q is set by the issuer, not by --claim", op, key)
		case key == DefaultGroupsClaim && value == "":
			return nil, fmt.Errorf("%s: empty group in %q", op, kv)
		}
		lists[key] = append(lists[key], value)
	}
	claims := make(map[string]any, len(lists))
	for key, vs := range lists {
		if len(vs) == 1 && key != DefaultGroupsClaim {
			claims[key] = vs[0]
		} else {
			claims[key] = vs
		}
	}
	return claims, nil
}
