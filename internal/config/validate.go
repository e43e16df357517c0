package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/warden-gateway/warden/internal/mask"
)

// Defaults. The config struct comments repeat them for readers of the YAML.
const (
	DefaultStore            = "sqlite://warden.db"
	DefaultGroupsClaim      = "groups"
	DefaultLeeway           = 30 * time.Second
	MaxLeeway               = 5 * time.Minute
	DefaultSSLMode          = "prefer"
	DefaultSchema           = "public"
	DefaultMaxMessageBytes  = 1 << 20
	DefaultMaxQueryBytes    = 256 << 10
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultReviewWait       = 30 * time.Second
	MaxReviewWait           = 10 * time.Minute
	DefaultReviewTTL        = time.Hour
	DefaultGrantTTL         = 15 * time.Minute
	DefaultMinApprovals     = 1
	DefaultWebhookFormat    = "json"
	DefaultMaskStyle        = StyleRedact
	DefaultMaskKeep         = mask.DefaultKeep        // characters style partial keeps
	DefaultMaskReplacement  = mask.DefaultReplacement // what style redact writes
	MinHashKeyBytes         = mask.MinHashKeyLen      // shortest masking.hash_key
	DefaultHTTPTimeout      = 30 * time.Second
	DefaultMaxRequestBytes  = 10 << 20
	DefaultMaxMaskBytes     = 32 << 20
	DefaultIdentityHeader   = "X-Warden-Identity"
	DefaultAssertionTTL     = 60 * time.Second
	NonJSONRefuse           = "refuse"
	NonJSONPass             = "pass"

	// maxMessageBytesCap is PostgreSQL's own cap on a protocol message
	// (PQ_LARGE_MESSAGE_LIMIT, src/include/libpq/libpq.h).
	maxMessageBytesCap = 1<<30 - 1
)

// webhookFormats are the values of reviews.webhook.format.
var webhookFormats = []string{"json", "slack"}

// maskStyles are the values of a mask rule's style, strongest first.
var maskStyles = []string{string(StyleNull), string(StyleRedact), string(StyleHash), string(StylePartial)}

// sslModes are libpq's values for sslmode
// (https://www.postgresql.org/docs/current/libpq-ssl.html#LIBPQ-SSL-SSLMODE-STATEMENTS).
var sslModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

var (
	// targetNameRe is an RFC 1123 DNS label: target names appear in
	// dbname, in URL paths and (later) as Host names.
	targetNameRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	// policyNameRe keeps policy names printable inside rule identifiers
	// ("name/allow[0]") and log lines.
	policyNameRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$`)
	// commandRe matches utility command names as sqlfacts reports them
	// ("vacuum", "do", "listen", "create extension").
	commandRe = regexp.MustCompile(`^[a-z][a-z_]*( [a-z_]+)*$`)
	// detectorNameRe is the shape of built-in detector names, which
	// custom ones share so that a rule's list reads uniformly.
	detectorNameRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
)

func (c *Config) setDefaults() {
	if c.Store == "" {
		c.Store = DefaultStore
	}
	for i := range c.Identity.OIDC {
		o := &c.Identity.OIDC[i]
		if o.GroupsClaim == "" {
			o.GroupsClaim = DefaultGroupsClaim
		}
		if o.Leeway == 0 {
			o.Leeway = DefaultLeeway
		}
	}
	for i := range c.Targets {
		t := &c.Targets[i]
		if (t.Type == "http" || t.Type == "kubernetes") && t.Timeout == 0 {
			t.Timeout = DefaultHTTPTimeout
		}
		if t.Type == "postgres" {
			if t.SSLMode == "" {
				t.SSLMode = DefaultSSLMode
			}
			if t.Schema == "" {
				t.Schema = DefaultSchema
			}
		}
	}
	if c.Limits.MaxMessageBytes == 0 {
		c.Limits.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.Limits.MaxQueryBytes == 0 {
		c.Limits.MaxQueryBytes = DefaultMaxQueryBytes
	}
	if c.Limits.HandshakeTimeout == 0 {
		c.Limits.HandshakeTimeout = DefaultHandshakeTimeout
	}
	for i := range c.Policies {
		for j := range c.Policies[i].Review {
			r := &c.Policies[i].Review[j]
			// An explicit "min_approvals: 0" is left for validate to
			// refuse: reading it as "one" would hide a mistake in the one
			// setting that says how many people must agree.
			if r.MinApprovals == 0 && !c.written(fmt.Sprintf("policies[%d].review[%d].min_approvals", i, j)) {
				r.MinApprovals = DefaultMinApprovals
			}
		}
		for j := range c.Policies[i].Mask {
			c.Policies[i].Mask[j].setDefaults()
		}
	}
	c.Reviews.setDefaults(c.Listen.HTTP, c.TLS != nil)
	if c.HTTP.MaxRequestBytes == 0 {
		c.HTTP.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.HTTP.MaxMaskBytes == 0 {
		c.HTTP.MaxMaskBytes = DefaultMaxMaskBytes
	}
	if c.HTTP.IdentityHeader == "" {
		c.HTTP.IdentityHeader = DefaultIdentityHeader
	}
	if c.HTTP.AssertionTTL == 0 {
		c.HTTP.AssertionTTL = DefaultAssertionTTL
	}
}

// setDefaults fills in the style and what it needs. An unknown style is
// left alone for validate to report.
func (r *MaskRule) setDefaults() {
	if r.Style == "" {
		r.Style = DefaultMaskStyle
	}
	if r.NonJSON == "" && len(r.Fields) > 0 {
		r.NonJSON = NonJSONRefuse
	}
	switch r.Style {
	case StylePartial:
		if r.Keep == nil {
			k := DefaultMaskKeep
			r.Keep = &k
		}
	case StyleRedact:
		if r.Replacement == "" {
			r.Replacement = DefaultMaskReplacement
		}
	}
}

// written reports whether the key at path was present in the parsed file
// (false for a Config built in Go).
func (c *Config) written(path string) bool {
	_, ok := c.lines[path]
	return ok
}

func (r *Reviews) setDefaults(httpListen string, https bool) {
	if r.Wait == 0 {
		r.Wait = DefaultReviewWait
	}
	if r.TTL == 0 {
		r.TTL = DefaultReviewTTL
	}
	if r.GrantTTL == 0 {
		r.GrantTTL = DefaultGrantTTL
	}
	if r.Webhook.URL != "" && r.Webhook.Format == "" {
		r.Webhook.Format = DefaultWebhookFormat
	}
	r.ConsoleURL = strings.TrimRight(r.ConsoleURL, "/")
	if r.ConsoleURL == "" && httpListen != "" {
		r.ConsoleURL = consoleURLFor(httpListen)
		if https && r.ConsoleURL != "" {
			// With tls: the http listener serves HTTPS only.
			r.ConsoleURL = "https://" + strings.TrimPrefix(r.ConsoleURL, "http://")
		}
	}
}

// consoleURLFor derives the console's URL from the HTTP listener address.
// An all-interfaces address (":8080", "0.0.0.0:8080", "[::]:8080") names
// no host a person could use, so it becomes localhost: right on the
// machine itself, and a hint to set console_url everywhere else. A
// malformed address yields "" (validate reports it).
func consoleURLFor(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// validator collects every problem rather than stopping at the first: an
// operator fixing a config wants the whole list in one run.
type validator struct {
	c    *Config
	errs []error
}

func (v *validator) errorf(path, format string, args ...any) {
	v.errs = append(v.errs, v.c.ErrorAt(path, fmt.Sprintf(format, args...)))
}

func (c *Config) validate() []error {
	v := &validator{c: c}
	v.listen()
	v.tls()
	v.store()
	v.identity()
	targets := v.targets()
	v.policies(targets, v.c.detectorNames())
	v.limits()
	v.reviews()
	v.masking()
	v.http()
	return v.errs
}

func (v *validator) listen() {
	l := v.c.Listen
	pgLoopback := v.hostPort("listen.postgres", l.Postgres)
	httpLoopback := v.hostPort("listen.http", l.HTTP)
	// Agents send their bearer tokens to the http listener for http and
	// kubernetes targets (and admins theirs to the admin API).
	if l.HTTP != "" && !httpLoopback && v.c.TLS == nil {
		v.errorf("listen.http", "%s is not a loopback address, so a tls: block is required (clients send their token in the Authorization header)", l.HTTP)
	}
	for i, t := range v.c.Targets {
		if (t.Type == "http" || t.Type == "kubernetes") && l.HTTP == "" {
			v.errorf(fmt.Sprintf("targets[%d].type", i), "%s targets are served on the http listener: set listen.http", t.Type)
			break
		}
	}
	// Clients send their access token as the PostgreSQL password; off
	// loopback it must not cross the network in clear text.
	if l.Postgres != "" && !pgLoopback && v.c.TLS == nil {
		v.errorf("listen.postgres", "%s is not a loopback address, so a tls: block is required (clients send their token as the password)", l.Postgres)
	}
}

// hostPort checks a listener address and reports whether it is loopback.
func (v *validator) hostPort(path, addr string) (loopback bool) {
	if addr == "" {
		return true
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.errorf(path, "%q is not host:port", addr)
		return true // already an error; don't pile on
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		v.errorf(path, "%q has an invalid port", addr)
	}
	return isLoopbackHost(host)
}

// isLoopbackHost reports whether host names only this machine. The empty
// host (":6432") means every interface, so it is not loopback.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.Unmap().IsLoopback()
}

func (v *validator) tls() {
	t := v.c.TLS
	if t == nil {
		return
	}
	if t.Cert == "" {
		v.errorf("tls.cert", "required")
	}
	if t.Key == "" {
		v.errorf("tls.key", "required")
	}
}

func (v *validator) store() {
	s := v.c.Store
	switch {
	case strings.HasPrefix(s, "sqlite://"):
		if p, _ := v.c.SQLitePath(); p == "" {
			v.errorf("store", "sqlite:// needs a file path, e.g. sqlite://warden.db")
		}
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		if _, err := url.Parse(s); err != nil {
			// url's error quotes the input, which may hold a password.
			v.errorf("store", "not a valid postgres:// URL")
		}
	default:
		v.errorf("store", "must start with sqlite:// or postgres://")
	}
}

// SQLitePath returns the resolved file path of a sqlite:// store, and
// false for any other store. "sqlite://warden.db" is relative to the
// config file, "sqlite:///var/lib/warden/warden.db" absolute. Query
// parameters ("?_pragma=…") are left to the store.
func (c *Config) SQLitePath() (string, bool) {
	rest, ok := strings.CutPrefix(c.Store, "sqlite://")
	if !ok {
		return "", false
	}
	rest, _, _ = strings.Cut(rest, "?")
	return c.Resolve(rest), true
}

func (v *validator) identity() {
	issuers := v.c.Identity.OIDC
	if len(issuers) == 0 {
		v.errorf("identity.oidc", "at least one OIDC issuer is required")
		return
	}
	seen := map[string]int{}
	for i, o := range issuers {
		p := fmt.Sprintf("identity.oidc[%d]", i)
		if o.Issuer == "" {
			v.errorf(p+".issuer", "required")
		} else {
			v.secureURL(p+".issuer", o.Issuer)
			if j, dup := seen[o.Issuer]; dup {
				v.errorf(p+".issuer", "duplicate of identity.oidc[%d]", j)
			}
			seen[o.Issuer] = i
		}
		if o.Audience == "" {
			v.errorf(p+".audience", "required")
		}
		if o.JWKSURL != "" {
			v.secureURL(p+".jwks_url", o.JWKSURL)
		}
		if o.Leeway < 0 || o.Leeway > MaxLeeway {
			v.errorf(p+".leeway", "must be between 0s and %s", MaxLeeway)
		}
	}
}

// secureURL requires https, allowing http only to a loopback host: keys
// fetched over plain HTTP from elsewhere could be swapped in transit, and
// whoever swaps them mints tokens. Loopback http exists for development
// and tests (a dev issuer on 127.0.0.1).
func (v *validator) secureURL(path, raw string) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		v.errorf(path, "%q is not an absolute URL", raw)
		return
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			v.errorf(path, "%q must use https:// (http:// is allowed only for loopback hosts)", raw)
		}
	default:
		v.errorf(path, "%q must use https://", raw)
	}
}

// targets validates targets and returns name → type for the policy checks.
func (v *validator) targets() map[string]string {
	names := map[string]string{}
	first := map[string]int{}
	for i, t := range v.c.Targets {
		p := fmt.Sprintf("targets[%d]", i)
		switch {
		case t.Name == "":
			v.errorf(p+".name", "required")
		case !targetNameRe.MatchString(t.Name):
			v.errorf(p+".name", "%q must be a DNS label: lower-case letters, digits and '-', at most 63", t.Name)
		default:
			if j, dup := first[t.Name]; dup {
				v.errorf(p+".name", "duplicate target name %q (also targets[%d])", t.Name, j)
			} else {
				first[t.Name] = i
				names[t.Name] = t.Type
			}
		}
		switch t.Type {
		case "postgres":
			v.postgresTarget(p, t)
		case "http", "kubernetes":
			v.httpTarget(p, t)
		case "":
			v.errorf(p+".type", "required (postgres, http or kubernetes)")
		default:
			v.errorf(p+".type", "unknown type %q (want postgres, http or kubernetes)", t.Type)
		}
	}
	return names
}

// httpTarget checks an http or kubernetes target. Keys of the other type
// are refused rather than ignored: a misplaced key would look like it did
// something.
func (v *validator) httpTarget(p string, t Target) {
	for _, k := range []struct {
		key string
		set bool
	}{{"address", t.Address != ""}, {"database", t.Database != ""}, {"user", t.User != ""},
		{"password", t.Password != ""}, {"sslmode", t.SSLMode != ""}, {"schema", t.Schema != ""},
		{"require_review", t.RequireReview}} {
		if k.set {
			v.errorf(p+"."+k.key, "only postgres targets have %s", k.key)
		}
	}
	if t.URL == "" {
		v.errorf(p+".url", "required")
	} else if u, err := url.Parse(t.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.errorf(p+".url", "%q must be an http:// or https:// URL with a host", t.URL)
	} else if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		v.errorf(p+".url", "%q must not carry a query, fragment or user info", t.URL)
	}
	auth := 0
	for name := range t.Headers {
		if !validHeaderName(name) {
			v.errorf(p+".headers."+name, "%q is not a valid header name", name)
		}
		if strings.EqualFold(name, "Authorization") {
			auth++
		}
	}
	if t.BasicAuth != nil {
		auth++
		if t.BasicAuth.Username == "" {
			v.errorf(p+".basic_auth.username", "required")
		}
	}
	if t.TokenFile != "" {
		auth++
	}
	if auth > 1 {
		v.errorf(p, "give the upstream credential once: headers.Authorization, basic_auth and token_file each set the Authorization header")
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		v.errorf(p+".cert_file", "cert_file and key_file go together")
	}
	if t.Timeout < 0 {
		v.errorf(p+".timeout", "must be positive")
	}
}

// article prefixes a target type with its indefinite article.
func article(typ string) string {
	if typ == "http" {
		return "an http"
	}
	return "a " + typ
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func (v *validator) http() {
	h := v.c.HTTP
	if h.Domain != "" {
		for _, label := range strings.Split(h.Domain, ".") {
			if !targetNameRe.MatchString(label) {
				v.errorf("http.domain", "%q is not a DNS name (lower-case labels separated by dots)", h.Domain)
				break
			}
		}
	}
	if h.MaxRequestBytes < 0 {
		v.errorf("http.max_request_bytes", "must be positive")
	}
	if h.MaxMaskBytes < 0 {
		v.errorf("http.max_mask_bytes", "must be positive")
	}
	if !validHeaderName(h.IdentityHeader) {
		v.errorf("http.identity_header", "%q is not a valid header name", h.IdentityHeader)
	}
	if h.AssertionTTL < 0 || h.AssertionTTL > time.Hour {
		v.errorf("http.assertion_ttl", "must be between 1s and 1h")
	}
}

func (v *validator) postgresTarget(p string, t Target) {
	if t.Address == "" {
		v.errorf(p+".address", "required")
	} else if host, port, err := net.SplitHostPort(t.Address); err != nil || host == "" || port == "" {
		v.errorf(p+".address", "%q is not host:port", t.Address)
	}
	if t.Database == "" {
		v.errorf(p+".database", "required")
	}
	if t.User == "" {
		v.errorf(p+".user", "required")
	}
	// Password is optional (trust or certificate auth upstream) and is
	// never mentioned in a message.
	if !slices.Contains(sslModes, t.SSLMode) {
		v.errorf(p+".sslmode", "%q is not one of %s", t.SSLMode, strings.Join(sslModes, ", "))
	}
}

func (v *validator) policies(targets map[string]string, detectors map[string]bool) {
	first := map[string]int{}
	for i, pol := range v.c.Policies {
		p := fmt.Sprintf("policies[%d]", i)
		switch {
		case pol.Name == "":
			v.errorf(p+".name", "required")
		case !policyNameRe.MatchString(pol.Name):
			v.errorf(p+".name", "%q may contain only letters, digits, '-', '_' and '.', at most 63", pol.Name)
		default:
			if j, dup := first[pol.Name]; dup {
				v.errorf(p+".name", "duplicate policy name %q (also policies[%d])", pol.Name, j)
			} else {
				first[pol.Name] = i
			}
		}
		for j, r := range pol.Allow {
			v.rule(fmt.Sprintf("%s.allow[%d]", p, j), r, targets, "allow")
		}
		for j, r := range pol.Deny {
			v.rule(fmt.Sprintf("%s.deny[%d]", p, j), r, targets, "deny")
		}
		for j, r := range pol.Review {
			v.rule(fmt.Sprintf("%s.review[%d]", p, j), r, targets, "review")
		}
		for j, r := range pol.Mask {
			v.maskRule(fmt.Sprintf("%s.mask[%d]", p, j), r, targets, detectors)
		}
	}
}

// rule checks one rule of list ("allow", "deny" or "review"). The
// approvers expression is compiled by package policy, like `when`.
func (v *validator) rule(p string, r Rule, targets map[string]string, list string) {
	if r.Target == "" {
		v.errorf(p+".target", "required")
	} else if _, ok := targets[r.Target]; !ok {
		v.errorf(p+".target", "no target named %q", r.Target)
	}
	actions := r.SQL.Actions()
	typ := targets[r.Target]
	switch typ {
	case "postgres":
		if list != "allow" && len(actions) == 0 {
			v.errorf(p, "a %s rule must name something to %s (sql: {delete: [...]})", list, list)
		}
	case "http":
		if list != "allow" && len(r.HTTP) == 0 {
			v.errorf(p, "a %s rule must name something to %s (http: [{methods: [DELETE], paths: [/v1/**]}])", list, list)
		}
	case "kubernetes":
		if list != "allow" && len(r.Kubernetes) == 0 {
			v.errorf(p, "a %s rule must name something to %s (kubernetes: [{resources: [pods], verbs: [delete]}])", list, list)
		}
	}
	if typ == "postgres" || typ == "http" || typ == "kubernetes" {
		if r.SQL != nil && typ != "postgres" {
			v.errorf(p+".sql", "target %q is %s target: sql rules apply to postgres targets", r.Target, article(typ))
		}
		if len(r.HTTP) > 0 && typ != "http" {
			v.errorf(p+".http", "target %q is %s target: http rules apply to http targets", r.Target, article(typ))
		}
		if len(r.Kubernetes) > 0 && typ != "kubernetes" {
			v.errorf(p+".kubernetes", "target %q is %s target: kubernetes rules apply to kubernetes targets", r.Target, article(typ))
		}
	}
	for k, h := range r.HTTP {
		hp := fmt.Sprintf("%s.http[%d]", p, k)
		for m, meth := range h.Methods {
			if meth != "*" && (!validHeaderName(meth) || strings.ToUpper(meth) != meth) {
				v.errorf(fmt.Sprintf("%s.methods[%d]", hp, m), "%q is not an upper-case HTTP method (GET, POST, ...) or *", meth)
			}
		}
		for m, g := range h.Paths {
			if err := CheckPathGlob(g); err != nil {
				v.errorf(fmt.Sprintf("%s.paths[%d]", hp, m), "invalid path glob %q: %v", g, err)
			}
		}
	}
	for k, kr := range r.Kubernetes {
		kp := fmt.Sprintf("%s.kubernetes[%d]", p, k)
		if len(kr.Resources) == 0 {
			v.errorf(kp+".resources", "required (e.g. [pods], [\"*\"])")
		}
		if len(kr.Verbs) == 0 {
			v.errorf(kp+".verbs", "required (e.g. [get, list, watch])")
		}
		for m, verb := range kr.Verbs {
			if !slices.Contains(KubeVerbs, verb) {
				v.errorf(fmt.Sprintf("%s.verbs[%d]", kp, m), "unknown verb %q (want one of %s)", verb, strings.Join(KubeVerbs, ", "))
			}
		}
		for m, res := range kr.Resources {
			if res == "" || strings.Count(res, "/") > 1 || strings.HasPrefix(res, "/") || strings.HasSuffix(res, "/") {
				v.errorf(fmt.Sprintf("%s.resources[%d]", kp, m), "%q is not a resource (pods, pods/log, *, pods/*)", res)
			}
		}
		if kr.RevealSecretData && list != "allow" {
			v.errorf(kp+".reveal_secret_data", "only allow rules reveal Secret data")
		}
	}
	if list == "review" {
		if r.MinApprovals < 1 {
			v.errorf(p+".min_approvals", "must be at least 1")
		}
	} else {
		// A misplaced key would otherwise look like it held something.
		if r.Approvers != "" {
			v.errorf(p+".approvers", "only review rules have approvers")
		}
		if r.MinApprovals != 0 || v.c.written(p+".min_approvals") {
			v.errorf(p+".min_approvals", "only review rules have min_approvals")
		}
	}
	for _, a := range actions {
		for k, g := range a.Globs {
			gp := fmt.Sprintf("%s.sql.%s[%d]", p, a.Action, k)
			if a.Action == "command" {
				if !commandRe.MatchString(g) {
					v.errorf(gp, "%q is not a command name (lower case, e.g. vacuum, listen)", g)
				}
				continue
			}
			if _, err := ParseObjectGlob(g); err != nil {
				v.errorf(gp, "invalid glob %q: %v", g, err)
			}
		}
	}
}

// maskRule checks one mask rule. Style and its options are checked
// together, because a key that belongs to another style would look like
// it did something ("keep: 2" on a redact rule).
func (v *validator) maskRule(p string, r MaskRule, targets map[string]string, detectors map[string]bool) {
	if r.Target == "" {
		v.errorf(p+".target", "required")
	} else if _, ok := targets[r.Target]; !ok {
		v.errorf(p+".target", "no target named %q", r.Target)
	}
	switch typ := targets[r.Target]; typ {
	default:
		if len(r.Columns) == 0 && len(r.Detectors) == 0 {
			v.errorf(p, "a mask rule must name columns or detectors to mask")
		}
		if len(r.Fields) > 0 && typ == "postgres" {
			v.errorf(p+".fields", "fields apply to http targets; target %q is a postgres target (use columns)", r.Target)
		}
		if r.NonJSON != "" && typ == "postgres" {
			v.errorf(p+".non_json", "non_json applies to http targets")
		}
	case "http":
		if len(r.Fields) == 0 && len(r.Detectors) == 0 {
			v.errorf(p, "a mask rule must name fields or detectors to mask")
		}
		if len(r.Columns) > 0 {
			v.errorf(p+".columns", "columns apply to postgres targets; target %q is an http target (use fields)", r.Target)
		}
		for k, f := range r.Fields {
			if err := CheckFieldGlob(f); err != nil {
				v.errorf(fmt.Sprintf("%s.fields[%d]", p, k), "invalid field path %q: %v", f, err)
			}
		}
		switch r.NonJSON {
		case "", NonJSONRefuse, NonJSONPass:
		default:
			v.errorf(p+".non_json", "%q is not one of refuse, pass", r.NonJSON)
		}
	case "kubernetes":
		v.errorf(p+".target", "target %q is a kubernetes target: Secret values are masked there without mask rules (reveal them with reveal_secret_data)", r.Target)
	}
	for k, g := range r.Columns {
		if _, err := ParseColumnGlob(g); err != nil {
			v.errorf(fmt.Sprintf("%s.columns[%d]", p, k), "invalid column glob %q: %v", g, err)
		}
	}
	for k, d := range r.Detectors {
		if !detectors[d] {
			v.errorf(fmt.Sprintf("%s.detectors[%d]", p, k), "unknown detector %q (built-in: %s; or define it under masking.detectors)",
				d, strings.Join(mask.BuiltinNames(), ", "))
		}
	}
	switch r.Style {
	case StyleRedact, StylePartial, StyleHash, StyleNull:
	default:
		v.errorf(p+".style", "%q is not one of %s", r.Style, strings.Join(maskStyles, ", "))
	}
	if r.Keep != nil {
		switch {
		case r.Style != StylePartial:
			v.errorf(p+".keep", "only style partial keeps characters (this rule's style is %s)", r.Style)
		case *r.Keep < 0:
			v.errorf(p+".keep", "must be 0 or more")
		}
	}
	if r.Replacement != "" && r.Style != StyleRedact && r.Style != StyleNull {
		v.errorf(p+".replacement", "only styles redact and null write a replacement (this rule's style is %s)", r.Style)
	}
	if r.Style == StyleHash && v.c.Masking.HashKey == "" {
		v.errorf(p+".style", "style hash needs masking.hash_key (an HMAC key of at least %d bytes; use ${ENV})", MinHashKeyBytes)
	}
}

// detectorNames returns every name a mask rule may use: the built-in
// detectors and the custom ones (even those with a bad definition, so
// that one mistake is reported once, where it is).
func (c *Config) detectorNames() map[string]bool {
	names := map[string]bool{}
	for _, n := range mask.BuiltinNames() {
		names[n] = true
	}
	for _, d := range c.Masking.Detectors {
		if d.Name != "" {
			names[d.Name] = true
		}
	}
	return names
}

// masking checks the masking block (a rule using hash without a key is
// reported at the rule). A key no rule uses yet is fine: it may be there
// for a rule being rolled out. Messages never include the key.
func (v *validator) masking() {
	m := v.c.Masking
	if m.HashKey != "" && len(m.HashKey) < MinHashKeyBytes {
		// A short key can be found by trying keys against a hashed value
		// whose clear text is known, and then every hash reversed by
		// trying values.
		v.errorf("masking.hash_key", "must be at least %d bytes", MinHashKeyBytes)
	}
	first := map[string]int{}
	for i, d := range m.Detectors {
		p := fmt.Sprintf("masking.detectors[%d]", i)
		_, builtin := mask.Builtin(d.Name)
		switch {
		case d.Name == "":
			v.errorf(p+".name", "required")
		case !detectorNameRe.MatchString(d.Name):
			v.errorf(p+".name", "%q may contain only lower-case letters, digits and '_', starting with a letter, at most 63", d.Name)
		case builtin:
			v.errorf(p+".name", "%q is a built-in detector; give the custom one another name", d.Name)
		default:
			if j, dup := first[d.Name]; dup {
				v.errorf(p+".name", "duplicate detector name %q (also masking.detectors[%d])", d.Name, j)
			} else {
				first[d.Name] = i
			}
		}
		if d.Regex == "" {
			v.errorf(p+".regex", "required")
			continue
		}
		// Compiled here only to be checked; package policy compiles the
		// detectors it keeps.
		if _, err := regexp.Compile(d.Regex); err != nil {
			v.errorf(p+".regex", "invalid regular expression: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
			continue
		}
		name := d.Name
		if name == "" {
			name = "custom"
		}
		if _, err := mask.Regex(name, d.Regex); errors.Is(err, mask.ErrEmptyMatch) {
			v.errorf(p+".regex", "can match the empty string, so it would find zero-width values everywhere; make it match at least one character")
		} else if err != nil {
			v.errorf(p+".regex", "%v", err)
		}
	}
}

func (v *validator) limits() {
	if v.c.Audit.Retention < 0 {
		v.errorf("audit.retention", "must not be negative")
	} else if v.c.Audit.Retention > 0 && v.c.Audit.Retention < time.Hour {
		v.errorf("audit.retention", "%v is shorter than an hour; an audit log that forgets that fast is not one", v.c.Audit.Retention)
	}
	switch v.c.Audit.Sync {
	case "", "fsync", "os":
	default:
		v.errorf("audit.sync", "must be fsync or os, not %q", v.c.Audit.Sync)
	}
	if v.c.Audit.MaxRequestBytes < 0 {
		v.errorf("audit.max_request_bytes", "must be positive")
	}
	l := v.c.Limits
	if l.MaxMessageBytes < 0 || l.MaxMessageBytes > maxMessageBytesCap {
		v.errorf("limits.max_message_bytes", "must be between 1 and %d", maxMessageBytesCap)
	}
	if l.MaxQueryBytes < 0 {
		v.errorf("limits.max_query_bytes", "must be positive")
	} else if l.MaxQueryBytes > l.MaxMessageBytes && l.MaxMessageBytes > 0 {
		// A query arrives inside one message; a larger limit would never apply.
		v.errorf("limits.max_query_bytes", "%d exceeds limits.max_message_bytes (%d)", l.MaxQueryBytes, l.MaxMessageBytes)
	}
	if l.HandshakeTimeout < 0 {
		v.errorf("limits.handshake_timeout", "must be positive")
	}
}

func (v *validator) reviews() {
	r := v.c.Reviews
	waitOK := r.Wait >= 0 && r.Wait <= MaxReviewWait
	if !waitOK {
		v.errorf("reviews.wait", "must be between 0s and %s (a held statement keeps its connection open)", MaxReviewWait)
	}
	switch {
	case r.TTL < 0:
		v.errorf("reviews.ttl", "must not be negative")
	case waitOK && r.TTL < r.Wait:
		// A review that expired while its statement still waited could
		// never be approved in time for it.
		v.errorf("reviews.ttl", "%v is shorter than reviews.wait (%v)", r.TTL, r.Wait)
	}
	if r.GrantTTL < 0 {
		v.errorf("reviews.grant_ttl", "must not be negative")
	}
	w := r.Webhook
	if w.URL == "" {
		if w.Secret != "" || w.Format != "" {
			v.errorf("reviews.webhook.url", "required when reviews.webhook has other keys")
		}
	} else {
		v.webhookURL("reviews.webhook.url", w.URL)
		if w.Secret == "" {
			// Unsigned notifications could be forged by anyone who can
			// reach the receiver, and people act on them.
			v.errorf("reviews.webhook.secret", "required with a webhook url (the HMAC key notifications are signed with; use ${ENV})")
		}
		if !slices.Contains(webhookFormats, w.Format) {
			v.errorf("reviews.webhook.format", "%q is not one of %s", w.Format, strings.Join(webhookFormats, ", "))
		}
	}
	if r.ConsoleURL != "" {
		u, err := url.Parse(r.ConsoleURL)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
			v.errorf("reviews.console_url", "%q is not an absolute http:// or https:// URL", r.ConsoleURL)
		case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			v.errorf("reviews.console_url", "%q must be a base URL, without user, query or fragment", r.ConsoleURL)
		}
	}
}

// webhookURL is secureURL for a URL that may itself be a credential (a
// chat webhook's path is its key): messages name the scheme and host
// only.
func (v *validator) webhookURL(path, raw string) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		v.errorf(path, "not an absolute URL")
		return
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			v.errorf(path, "http://%s/... must use https:// (http:// is allowed only for loopback hosts)", u.Host)
		}
	default:
		v.errorf(path, "must use https://")
	}
}
