// Package config loads, expands and validates warden.yaml.
//
// It owns the file format: the YAML shape (the structs below are its
// documentation), ${ENV} expansion, defaults, and every check that can be
// made without I/O or compilation, each reported with the file, line and
// key path it concerns. It does no I/O beyond reading the config file
// itself (it does not open the TLS, CA or store files it names: their
// users do, via Config.Resolve), and it compiles nothing it keeps: CEL
// expressions, sql globs and mask rules are compiled by package policy,
// which reports its own errors through Config.ErrorAt. (Custom detectors'
// regular expressions are compiled once here, through package mask, only
// to check them, so that `warden policy check` reports a bad pattern with
// its line.) It knows nothing about protocols, sockets or identities.
package config

import (
	"strings"
	"time"

	"github.com/warden-gateway/warden/internal/mask"
)

// Config is the whole of warden.yaml. Field comments give defaults.
type Config struct {
	// Path is the file the config was loaded from (not a YAML key);
	// relative paths in the config resolve against its directory.
	Path string `yaml:"-"`

	Listen   Listen   `yaml:"listen"`
	TLS      *TLS     `yaml:"tls,omitempty"`    // optional; required for non-loopback listeners
	Store    string   `yaml:"store"`            // default "sqlite://warden.db" (relative to the config file); or postgres://…
	Identity Identity `yaml:"identity"`         // at least one issuer
	Admins   string   `yaml:"admins,omitempty"` // CEL over claims: who may use the admin API
	Targets  []Target `yaml:"targets"`
	Policies []Policy `yaml:"policies"`
	Limits   Limits   `yaml:"limits"`
	Audit    Audit    `yaml:"audit,omitempty"`
	Reviews  Reviews  `yaml:"reviews,omitempty"` // holding statements for approval (issue 4)
	Masking  Masking  `yaml:"masking,omitempty"` // hash key and custom detectors for mask rules (issue 5)
	HTTP     HTTP     `yaml:"http,omitempty"`    // HTTP and Kubernetes targets (issue 7)

	file  string         // Path, or "config" when Path is empty; for messages
	lines map[string]int // key path → line, recorded by Parse
}

// Listen holds listener addresses. Empty means "not listening".
type Listen struct {
	Postgres string `yaml:"postgres,omitempty"` // e.g. 127.0.0.1:6432
	HTTP     string `yaml:"http,omitempty"`     // HTTP and Kubernetes targets, admin API, metrics, health
}

// HTTP tunes the HTTP listener's proxying of http and kubernetes targets.
// Zero values mean the defaults.
type HTTP struct {
	// Domain lets clients reach a target by Host name as well as by path:
	// with domain "warden.internal", a request for Host
	// "billing.warden.internal" goes to target billing, with its path
	// unchanged. Empty: path routing (/t/<target>/...) only.
	Domain string `yaml:"domain,omitempty"`
	// MaxRequestBytes bounds a request body; a longer one gets 413.
	// Default 10 MiB.
	MaxRequestBytes int64 `yaml:"max_request_bytes,omitempty"`
	// MaxMaskBytes bounds a response body that must be inspected in
	// memory to be masked (JSON masking, Kubernetes Secrets); a longer one
	// is refused (502), never passed through unmasked. Default 32 MiB.
	MaxMaskBytes int64 `yaml:"max_mask_bytes,omitempty"`
	// IdentityHeader is the header warden sets on every request it
	// forwards to an http target: a short-lived JWT, signed by warden,
	// asserting who called (sub, groups, orig_iss) and for which target
	// (aud, target); one is reused for the same caller and target for
	// half its lifetime.
	// Client-supplied values are always removed. Default
	// "X-Warden-Identity".
	IdentityHeader string `yaml:"identity_header,omitempty"`
	// AssertionTTL is the lifetime of that JWT. Default 60s.
	AssertionTTL time.Duration `yaml:"assertion_ttl,omitempty"`
	// AssertionKeyFile is a PEM private key (EC P-256, RSA or Ed25519)
	// warden signs identity assertions with; its public key is served at
	// /.well-known/warden/jwks.json. Empty: a key generated at start
	// (backends must then fetch the JWKS after every restart).
	AssertionKeyFile string `yaml:"assertion_key_file,omitempty"`
}

// TLS is the server certificate for the listeners.
type TLS struct {
	Cert string `yaml:"cert"` // PEM file, relative to the config file; required
	Key  string `yaml:"key"`  // PEM file, relative to the config file; required
	// AllowPlaintextPasswords permits cleartext token passwords without TLS
	// on a non-loopback listener. Default false. Never turn on in production.
	AllowPlaintextPasswords bool `yaml:"allow_plaintext_passwords,omitempty"`
}

// Identity lists trusted token issuers.
type Identity struct {
	OIDC []OIDCIssuer `yaml:"oidc"`
}

// OIDCIssuer is one trusted OpenID Connect issuer.
type OIDCIssuer struct {
	Issuer      string        `yaml:"issuer"`             // exact "iss"; discovery at <issuer>/.well-known/openid-configuration
	Audience    string        `yaml:"audience"`           // required "aud"
	JWKSURL     string        `yaml:"jwks_url,omitempty"` // optional; else from discovery
	GroupsClaim string        `yaml:"groups_claim"`       // default "groups"
	Leeway      time.Duration `yaml:"leeway"`             // clock skew allowed on exp/nbf/iat; 0 means the default 30s; max 5m
	CAFile      string        `yaml:"ca_file,omitempty"`  // optional CA bundle for the issuer's HTTPS, relative to the config file
}

// Target is one upstream system.
type Target struct {
	Name string `yaml:"name"` // what clients put in dbname / the URL
	Type string `yaml:"type"` // "postgres", "http" or "kubernetes"

	// PostgreSQL
	Address  string `yaml:"address"`            // host:port
	Database string `yaml:"database"`           // upstream database name
	User     string `yaml:"user"`               // upstream role warden logs in as
	Password string `yaml:"password,omitempty"` // use ${ENV}; never inline in production
	SSLMode  string `yaml:"sslmode"`            // libpq sslmode for upstream; default "prefer"
	Schema   string `yaml:"schema"`             // schema unqualified names resolve to; default "public"

	// RequireReview holds for review every statement that policy would
	// allow but that the SQL classifier marks high-risk (UPDATE or DELETE
	// without WHERE, DDL, TRUNCATE, DO), so an operator can hold them
	// without listing tables in review rules. Approvers are the admins.
	// Default false.
	RequireReview bool `yaml:"require_review,omitempty"`

	// HTTP and Kubernetes

	// URL is the upstream base URL: http://127.0.0.1:9000,
	// https://10.0.0.1:6443. A path in it is prefixed to every request's.
	URL string `yaml:"url,omitempty"`
	// Headers are set on every upstream request (replacing any the client
	// sent): the target's own credential, e.g.
	// {Authorization: "Bearer ${BILLING_TOKEN}"}. Use ${ENV}.
	Headers map[string]string `yaml:"headers,omitempty"`
	// BasicAuth is sent as the Authorization header.
	BasicAuth *BasicAuth `yaml:"basic_auth,omitempty"`
	// TokenFile holds a bearer token sent as "Authorization: Bearer"
	// (re-read when the file changes, as projected service-account tokens
	// rotate). Relative to the config file.
	TokenFile string `yaml:"token_file,omitempty"`
	// CAFile verifies the upstream's certificate (https URLs); default the
	// system roots. Relative to the config file.
	CAFile string `yaml:"ca_file,omitempty"`
	// CertFile and KeyFile are a client certificate for mutual TLS
	// upstream. Relative to the config file; both or neither.
	CertFile string `yaml:"cert_file,omitempty"`
	KeyFile  string `yaml:"key_file,omitempty"`
	// Timeout bounds the wait for the upstream's response headers (not a
	// streamed body: watches and logs may run for hours). Default 30s.
	Timeout time.Duration `yaml:"timeout,omitempty"`
}

// BasicAuth is an upstream username and password.
type BasicAuth struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"` // use ${ENV}
}

// Policy grants rules to identities matching When. Rules are named by
// policy, list and index in decisions: "analyst-agents/allow[0]".
//
// For one access, deny beats review beats allow, across every policy
// whose When holds; an access no rule covers is denied.
type Policy struct {
	Name  string `yaml:"name"`           // unique; letters, digits, '-', '_', '.'
	When  string `yaml:"when,omitempty"` // CEL over `claims` (map), `sub`, `iss`, `groups`; default true
	Allow []Rule `yaml:"allow,omitempty"`
	Deny  []Rule `yaml:"deny,omitempty"`
	// Review rules name what may run only after a human approves it
	// (issue 4).
	Review []Rule `yaml:"review,omitempty"`
	// Mask rules say which values of a target's results the identities
	// matching When see masked (issue 5). They grant nothing: an identity
	// still needs an allow rule to read the columns. An identity gets the
	// mask rules of every policy it matches; where two mask one column,
	// the stronger style wins.
	Mask []MaskRule `yaml:"mask,omitempty"`
}

// Rule applies to one target. An allow rule without sql grants only
// connecting and running statements that touch no object (SELECT 1, SET
// application_name, BEGIN); a deny or review rule must name something.
// A review rule also grants connecting, so that the statements it holds
// can be sent at all.
type Rule struct {
	Target string   `yaml:"target"` // name of a configured target; required
	SQL    *SQLRule `yaml:"sql,omitempty"`
	// HTTP lists request patterns of an http target; a request matches
	// the rule if it matches any of them.
	HTTP []HTTPRule `yaml:"http,omitempty"`
	// Kubernetes lists API request patterns of a kubernetes target; a
	// request matches the rule if it matches any of them.
	Kubernetes []KubeRule `yaml:"kubernetes,omitempty"`

	// Review rules only.

	// Approvers is a CEL expression over the approver's token (the same
	// variables as a policy's `when`): who may approve or deny what this
	// rule holds. Default "": whoever matches the top-level `admins`.
	Approvers string `yaml:"approvers,omitempty"`
	// MinApprovals is how many distinct approvers must approve. Default 1.
	MinApprovals int `yaml:"min_approvals,omitempty"`
}

// HTTPRule matches HTTP requests. Empty lists match anything.
type HTTPRule struct {
	// Methods are HTTP methods (GET, POST, ...; "*" any). GET covers
	// HEAD. A WebSocket upgrade is a GET.
	Methods []string `yaml:"methods,omitempty"`
	// Paths are path globs over the request's decoded path (below the
	// /t/<target> prefix): '*' matches within one segment, "**" as a
	// whole segment any number of segments (zero included), so
	// "/v1/invoices/**" matches /v1/invoices and everything under it.
	Paths []string `yaml:"paths,omitempty"`
	// When is a CEL condition over the request: `method` (string), `path`
	// (string), `query` (map of name to list of values), `headers` (map of
	// lower-case name to the values joined by ", "), and the principal's
	// `claims`, `sub`, `iss`, `groups`. Default true.
	When string `yaml:"when,omitempty"`
}

// KubeRule matches Kubernetes API requests, as the API server sees them
// (verb, API group, resource, subresource, namespace, name).
type KubeRule struct {
	// Namespaces are namespace globs. Empty: any namespace, all
	// namespaces at once, and cluster-scoped resources. Listed: only
	// requests inside one of them ("*" any single namespace; never
	// cluster-scoped or all-namespaces requests).
	Namespaces []string `yaml:"namespaces,omitempty"`
	// APIGroups are API groups ("" the core group, "apps", "*"). Empty:
	// any group.
	APIGroups []string `yaml:"api_groups,omitempty"`
	// Resources are resource names as in RBAC: "pods", "pods/log",
	// "deployments", "*" (every resource, no subresource), "pods/*"
	// (every subresource of pods), "*/*" everything. Required.
	Resources []string `yaml:"resources"`
	// Verbs are get, list, watch, create, update, patch, delete,
	// deletecollection, proxy, or "*"; and exec, attach, port-forward,
	// which match the pods/exec, pods/attach and pods/portforward
	// subresources whatever their HTTP verb. Required.
	Verbs []string `yaml:"verbs"`
	// Names are object name globs. Empty: any name, and collections.
	Names []string `yaml:"names,omitempty"`
	// RevealSecretData, on an allow rule, lets the Secrets this rule
	// allows reading keep their data and stringData values in responses.
	// Default false: Secret values are masked for everyone.
	RevealSecretData bool `yaml:"reveal_secret_data,omitempty"`
}

// SQLRule maps statement actions to object globs ("public.orders",
// "public.*", "*.audit_*"). Unqualified globs mean the target's schema.
// See ParseObjectGlob for the glob syntax. The yaml keys are the names of
// sqlfacts.Action values; Command entries are exact lower-case command
// names, not globs.
type SQLRule struct {
	Select   []string `yaml:"select,omitempty"`
	Insert   []string `yaml:"insert,omitempty"`
	Update   []string `yaml:"update,omitempty"`
	Delete   []string `yaml:"delete,omitempty"`
	Truncate []string `yaml:"truncate,omitempty"`
	Lock     []string `yaml:"lock,omitempty"`
	Create   []string `yaml:"create,omitempty"`
	Alter    []string `yaml:"alter,omitempty"`
	Drop     []string `yaml:"drop,omitempty"`
	Execute  []string `yaml:"execute,omitempty"` // functions beyond the built-in safe list
	Command  []string `yaml:"command,omitempty"` // utility commands: vacuum, analyze, do, listen, notify, ...
}

// Masking styles, as written in a mask rule's style. The strongest first:
// when two rules mask one column, the stronger style wins (null > redact
// > hash > partial).
// Package mask owns their meaning; these are its names.
const (
	StyleNull    = MaskStyle(mask.StyleNull)    // the value becomes NULL (JSON null); inside free text, the replacement
	StyleRedact  = MaskStyle(mask.StyleRedact)  // the value becomes the replacement text
	StyleHash    = MaskStyle(mask.StyleHash)    // the value becomes a keyed HMAC of it: equal values mask equally
	StylePartial = MaskStyle(mask.StylePartial) // every letter and digit but the last keep characters becomes '*'
)

// MaskStyle is a mask rule's style. It is a type of its own because of
// YAML: "style: null" is YAML's null, which would otherwise leave the
// field empty and so select the default, redact, a weaker style than the
// one written. Parse reads YAML's null spellings (null, Null, NULL, ~)
// in a MaskStyle as the style null; only an empty value ("style:") means
// the default.
type MaskStyle string

// MaskRule masks values in one target's results. Mask rules are named by
// policy and index: "analysts/mask[0]".
type MaskRule struct {
	Target string `yaml:"target"` // name of a configured target; required
	// Columns lists the columns whose values are masked, as column globs:
	// "public.customers.email", "customers.email" (any schema), "*.ssn",
	// "public.*.card_number". See ParseColumnGlob for the syntax.
	Columns []string `yaml:"columns,omitempty"`
	// Fields lists, for an http target, JSON response fields whose values
	// are masked, as dotted key paths: "customer.email", "items.*.ssn",
	// "**.card_number". Arrays are transparent ("invoices.total" matches
	// the total of every element of invoices); '*' matches one key, "**"
	// any run of keys.
	Fields []string `yaml:"fields,omitempty"`
	// NonJSON says what happens, on an http target, to a response body
	// this rule should mask that is not JSON: "refuse" (default: 502,
	// nothing passes unmasked) or "pass" (sent unchanged).
	NonJSON string `yaml:"non_json,omitempty"`
	// Detectors names content recognisers (the built-in email, phone,
	// credit_card, us_ssn, iban, ip, jwt, api_key, private_key, or one
	// defined under masking.detectors) applied to the text values of
	// every column that Columns does not already mask (on an http target:
	// to every JSON string value that Fields does not mask). A rule needs
	// columns or fields, detectors, or both.
	Detectors []string `yaml:"detectors,omitempty"`
	// Style is one of redact, partial, hash, null. Default redact. hash
	// needs masking.hash_key.
	Style MaskStyle `yaml:"style,omitempty"`
	// Keep is, for style partial only, how many characters stay in clear
	// at the end of a value. Default 4 (nil: not written); 0 keeps none.
	// The masker never shows more than half of a value, whatever Keep.
	Keep *int `yaml:"keep,omitempty"`
	// Replacement is the text style redact writes in place of a value,
	// and style null inside free text (where a NULL cannot stand).
	// Default "[REDACTED]" for redact; for null, empty means that default.
	Replacement string `yaml:"replacement,omitempty"`
	// AllowPredicates lets statements use the masked columns in WHERE,
	// JOIN, ORDER BY, GROUP BY and HAVING. Default false: such a
	// statement is refused, because a predicate over a masked column
	// reveals its clear value one comparison at a time
	// (WHERE ssn LIKE '1%').
	AllowPredicates bool `yaml:"allow_predicates,omitempty"`
}

// Masking holds what mask rules share.
type Masking struct {
	// HashKey is the HMAC key of style hash: required, at least 16 bytes,
	// if any mask rule uses hash. Use ${ENV}; never inline it: whoever has
	// it can test guesses against hashed values. Keep it stable: changing
	// it changes every hashed value.
	HashKey string `yaml:"hash_key,omitempty"`
	// Detectors defines custom detectors, usable by name in mask rules.
	Detectors []CustomDetector `yaml:"detectors,omitempty"`
}

// CustomDetector is a detector defined by a regular expression.
type CustomDetector struct {
	// Name is how mask rules refer to it: lower-case letters, digits and
	// '_', not the name of a built-in detector; required.
	Name string `yaml:"name"`
	// Regex is an RE2 regular expression (Go's regexp syntax; matching is
	// linear in the text, whatever the pattern) that must not match the
	// empty string. A capture group named "mask" limits the masked part
	// to that group: 'employee_id=(?P<mask>E[0-9]{6})'. Required.
	Regex string `yaml:"regex"`
}

// Limits bound what a client may send. Zero means the default.
type Limits struct {
	MaxMessageBytes  int           `yaml:"max_message_bytes"` // default 1 MiB (PostgreSQL's own cap is 1 GiB)
	MaxQueryBytes    int           `yaml:"max_query_bytes"`   // default 256 KiB; longer SQL is refused
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"` // default 10s
}

// Reviews tunes how statements held for review (by a review rule or a
// target's require_review) are held, approved and announced. Zero values
// mean the defaults.
type Reviews struct {
	// Wait is how long a held statement waits on its connection for a
	// decision before the client gets SQLSTATE 42501 with the review id
	// (it may retry the identical statement once approved). Default 30s;
	// at most 10m, because a waiting statement keeps its connection, and
	// any transaction it is in, open.
	Wait time.Duration `yaml:"wait"`
	// TTL is how long a pending review may be decided; after it, it
	// expires. Default 1h; at least Wait.
	TTL time.Duration `yaml:"ttl"`
	// GrantTTL is how long after approval the identical statement may be
	// retried, once, by the identity that sent it. Default 15m.
	GrantTTL time.Duration `yaml:"grant_ttl"`
	// Webhook announces new reviews. Optional; a failure to notify never
	// approves anything.
	Webhook Webhook `yaml:"webhook,omitempty"`
	// ConsoleURL is the base URL of the web console, used in messages
	// that send people to a review; no trailing slash. Default
	// http://<listen.http> (with "localhost" for an all-interfaces
	// address); set it when people reach warden by another name. Empty
	// when there is no HTTP listener.
	ConsoleURL string `yaml:"console_url,omitempty"`
}

// Webhook is an HTTP endpoint told about every new review.
type Webhook struct {
	// URL receives a POST per review; https, or http to a loopback host.
	// Empty: no webhook. Treat it as a secret (chat webhook URLs are
	// credentials); Config.Redacted hides its path.
	URL string `yaml:"url,omitempty"`
	// Secret is the HMAC-SHA256 key the body is signed with; required
	// with URL. Use ${ENV}; never inline in production.
	Secret string `yaml:"secret,omitempty"`
	// Format is "json" (the review as JSON; default) or "slack" (a
	// Slack-compatible incoming-webhook message).
	Format string `yaml:"format,omitempty"`
}

// ActionGlobs is one action key of a SQLRule and its entries.
type ActionGlobs struct {
	Action string   // the yaml key: "select", "insert", ..., "command"
	Globs  []string // as written
}

// Actions lists the rule's non-empty action keys in a fixed order (the
// order of the struct fields), so that callers can iterate without
// knowing each field.
func (r *SQLRule) Actions() []ActionGlobs {
	if r == nil {
		return nil
	}
	all := []ActionGlobs{
		{"select", r.Select}, {"insert", r.Insert}, {"update", r.Update},
		{"delete", r.Delete}, {"truncate", r.Truncate}, {"lock", r.Lock},
		{"create", r.Create}, {"alter", r.Alter}, {"drop", r.Drop},
		{"execute", r.Execute}, {"command", r.Command},
	}
	out := all[:0]
	for _, a := range all {
		if len(a.Globs) > 0 {
			out = append(out, a)
		}
	}
	return out
}

// Line returns the line of the key at path ("targets[0].address") in the
// file the config was parsed from. For a key that is absent it returns
// the line of its nearest present ancestor, so a "required" error points
// at the block missing the key; 0 when nothing is known (a Config built
// in Go rather than parsed).
func (c *Config) Line(path string) int {
	for path != "" {
		if l, ok := c.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// ErrorAt returns an *Error for the key at path, positioned by Line. Other
// packages (policy, when compiling CEL and globs) use it so that every
// configuration problem reads the same: "warden.yaml:14: path: msg".
func (c *Config) ErrorAt(path, msg string) *Error {
	file := c.file
	if file == "" {
		file = c.Path
	}
	if file == "" {
		file = "config"
	}
	return &Error{File: file, Line: c.Line(path), Path: path, Msg: msg}
}

// Audit tunes the audit log.
type Audit struct {
	// Retention is how long records are kept; older ones are pruned
	// (from the start of the hash chain, which stays verifiable). Default
	// 0: keep forever.
	Retention time.Duration `yaml:"retention,omitempty"`
	// MaxRequestBytes bounds the SQL text stored in one record; the
	// record's digest always covers the whole text. Default 4096.
	MaxRequestBytes int `yaml:"max_request_bytes,omitempty"`
	// Sync is when a record counts as durable: "fsync" (default: every
	// group commit is fsynced; survives power loss) or "os" (written to
	// the operating system; survives a crash or kill -9 of warden, not a
	// power loss — several times faster on slow disks).
	Sync string `yaml:"sync,omitempty"`
}
