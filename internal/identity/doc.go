// Package identity turns a presented credential (an OIDC/JWT access token)
// into a verified Principal. It owns token verification, the verified-token
// cache and the development issuer; it knows nothing about protocols or
// policy syntax.
//
// # Verifying tokens
//
// NewOIDC builds an Authenticator from the configured issuers. At start-up
// each issuer is resolved with OpenID Connect discovery (through go-oidc)
// unless its jwks_url is set, and its JSON Web Key Set is fetched; an
// issuer that cannot be reached fails start-up with an error naming it.
//
// Authenticator.Verify then checks a raw bearer token, strictly and in
// this order:
//
//  1. at most MaxTokenBytes, compact JWS serialization only (RFC 7519 §7.2);
//  2. a cache hit for the exact bytes, if its exp has not passed;
//  3. "alg" is one of RS256, RS384, RS512, ES256, ES384, PS256, EdDSA —
//     never "none" or HS* (RFC 8725 §2.1, §3.1); "crit" is refused
//     (RFC 7515 §4.1.11);
//  4. the *unverified* "iss" picks the issuer by exact string match;
//  5. the signature verifies with a key from that issuer's JWKS whose kid
//     matches and whose type and "alg" fit the token's alg (RFC 8725 §3.1);
//     keys named inside the token ("jwk", "jku", "x5u") are ignored
//     (RFC 8725 §3.10);
//  6. "iss" is exact, "aud" contains the configured audience, "exp" is
//     present and not past, "nbf" and "iat" are not in the future — all with
//     the configured leeway (RFC 7519 §4.1, RFC 8725 §3.8–3.9);
//  7. "sub" is a non-empty string and the groups claim, if present, is a
//     string (one group) or an array of strings.
//
// Every refusal is a *VerifyError whose Reason is a stable string
// (ReasonExpired, ReasonBadAudience, ...) for metrics and audit; tokens
// themselves are never logged nor put in errors.
//
// # Keys and the IdP
//
// A token with an unknown kid makes the Authenticator fetch the issuer's
// JWKS again — that is how key rotation is noticed — but at most once per
// Options.RefreshInterval per issuer, so a flood of tokens with random kids
// cannot make warden hammer the IdP. A key set older than an hour is
// fetched again before use, so withdrawn keys stop working; if that fetch
// fails, the keys at hand stay in use.
//
// # Cache
//
// Verified tokens are remembered by SHA-256 of the token, at most
// Options.CacheSize of them, each until min(exp, verification +
// Options.CacheTTL). Every hit checks exp again. Rejections are never cached.
//
// # Development issuer
//
// DevIssuer mints ES256 tokens from a local key and serves discovery and
// the JWKS over HTTP, so NewOIDC trusts it like any IdP. It backs
// `warden token` and `warden demo`, and package identitytest, which gives
// other packages' tests a running issuer. It is never for production.
package identity
