package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/identity"
)

// FuzzVerify feeds arbitrary strings to the verifier of a live loopback
// issuer: it must never panic, never accept, and always explain itself
// with a *VerifyError.
//
// The committed corpus (testdata/fuzz/FuzzVerify) holds shapes that do not
// depend on the issuer's port; the seeds added below reach past the issuer
// check. None of them is one mutation away from a valid token: each is
// invalid in its signed content (expired, wrong audience, unsigned, signed
// by the wrong key), which no mutation can fix without the private key.
func FuzzVerify(f *testing.F) {
	iss := newTestIssuer(f)
	auth, err := identity.NewOIDC(context.Background(), []config.OIDCIssuer{iss.config()}, identity.Options{})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	good := iss.claims(now)
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pkix, _ := x509.MarshalPKIXPublicKey(iss.Dev.PublicKey())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})

	for _, seed := range []string{
		iss.sign(f, with(good, "exp", now.Add(-time.Hour).Unix())),
		iss.sign(f, with(good, "aud", "other")),
		iss.sign(f, without(good, "sub")),
		iss.sign(f, with(good, "groups", []any{1, 2})),
		handMade(f, `{"alg":"none","typ":"JWT"}`, good, nil),
		handMade(f, `{"alg":"ES256","kid":"`+iss.Dev.KeyID()+`","crit":["x"]}`, good, make([]byte, 64)),
		signWith(f, jose.HS256, pubPEM, iss.Dev.KeyID(), good, false),
		signWith(f, jose.ES256, attacker, iss.Dev.KeyID(), good, false),
		signWith(f, jose.ES256, attacker, "", good, false),
		signWith(f, jose.ES256, attacker, "random", good, false),
	} {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, token string) {
		p, err := auth.Verify(context.Background(), token)
		if err == nil {
			t.Fatalf("accepted a fuzzed token: %+v", p)
		}
		if p != nil {
			t.Fatalf("principal returned with error %v", err)
		}
		var ve *identity.VerifyError
		if !errors.As(err, &ve) || ve.Reason == "" {
			t.Fatalf("untyped error %T: %v", err, err)
		}
	})
}
