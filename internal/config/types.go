// Package config loads, expands and validates warden.yaml. It does no I/O
// beyond reading the files the configuration names; it compiles nothing
// (policy compiles its own rules).
package config

import "time"

// Config is the whole of warden.yaml. Field comments give defaults.
type Config struct {
	// Path is the file the config was loaded from (not a YAML key);
	// relative paths in the config resolve against its directory.
	Path string `yaml:"-"`

	Listen   Listen   `yaml:"listen"`
	TLS      *TLS     `yaml:"tls"`      // optional; required for non-loopback listeners
	Store    string   `yaml:"store"`    // default "sqlite://warden.db" (relative to the config file)
	Identity Identity `yaml:"identity"` // at least one issuer
	Admins   string   `yaml:"admins"`   // CEL over claims: who may use the admin API
	Targets  []Target `yaml:"targets"`
	Policies []Policy `yaml:"policies"`
	Limits   Limits   `yaml:"limits"`
}

// Listen holds listener addresses. Empty means "not listening".
type Listen struct {
	Postgres string `yaml:"postgres"` // e.g. 127.0.0.1:6432
	HTTP     string `yaml:"http"`     // admin API, metrics, health
}

// TLS is the server certificate for the listeners.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// AllowPlaintextPasswords permits cleartext token passwords without TLS
	// on a non-loopback listener. Default false. Never turn on in production.
	AllowPlaintextPasswords bool `yaml:"allow_plaintext_passwords"`
}

// Identity lists trusted token issuers.
type Identity struct {
	OIDC []OIDCIssuer `yaml:"oidc"`
}

// OIDCIssuer is one trusted OpenID Connect issuer.
type OIDCIssuer struct {
	Issuer      string        `yaml:"issuer"`       // exact "iss"; discovery at <issuer>/.well-known/openid-configuration
	Audience    string        `yaml:"audience"`     // required "aud"
	JWKSURL     string        `yaml:"jwks_url"`     // optional; else from discovery
	GroupsClaim string        `yaml:"groups_claim"` // default "groups"
	Leeway      time.Duration `yaml:"leeway"`       // clock skew allowed on exp/nbf/iat; default 30s, max 5m
	CAFile      string        `yaml:"ca_file"`      // optional CA bundle for the issuer's HTTPS
}

// Target is one upstream system.
type Target struct {
	Name string `yaml:"name"` // what clients put in dbname / the URL
	Type string `yaml:"type"` // "postgres" (http, kubernetes later)

	// PostgreSQL
	Address  string `yaml:"address"`  // host:port
	Database string `yaml:"database"` // upstream database name
	User     string `yaml:"user"`     // upstream role warden logs in as
	Password string `yaml:"password"` // use ${ENV}; never inline in production
	SSLMode  string `yaml:"sslmode"`  // libpq sslmode for upstream; default "prefer"
	Schema   string `yaml:"schema"`   // schema unqualified names resolve to; default "public"
}

// Policy grants rules to identities matching When.
type Policy struct {
	Name  string `yaml:"name"`
	When  string `yaml:"when"` // CEL over `claims` (map), `sub`, `iss`, `groups`; default true
	Allow []Rule `yaml:"allow"`
	Deny  []Rule `yaml:"deny"`
	// Review rules (issue 4) and masks (issue 5) are added later.
}

// Rule applies to one target.
type Rule struct {
	Target string   `yaml:"target"`
	SQL    *SQLRule `yaml:"sql"`
}

// SQLRule maps statement actions to object globs ("public.orders",
// "public.*", "*.audit_*"). Unqualified globs mean the target's schema.
type SQLRule struct {
	Select   []string `yaml:"select"`
	Insert   []string `yaml:"insert"`
	Update   []string `yaml:"update"`
	Delete   []string `yaml:"delete"`
	Truncate []string `yaml:"truncate"`
	Lock     []string `yaml:"lock"`
	Create   []string `yaml:"create"`
	Alter    []string `yaml:"alter"`
	Drop     []string `yaml:"drop"`
	Execute  []string `yaml:"execute"` // functions beyond the built-in safe list
	Command  []string `yaml:"command"` // utility commands: vacuum, analyze, do, listen, notify, ...
}

// Limits bound what a client may send. Zero means the default.
type Limits struct {
	MaxMessageBytes  int           `yaml:"max_message_bytes"` // default 1 MiB (PostgreSQL's own cap is 1 GiB)
	MaxQueryBytes    int           `yaml:"max_query_bytes"`   // default 256 KiB; longer SQL is refused
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"` // default 10s
}
