package policy

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/google/cel-go/cel"

	"github.com/warden-gateway/warden/internal/config"
)

// This file decides requests to http and kubernetes targets. Their rules
// are few per target and matched in order (a linear scan over compiled
// globs); an http rule's `when` is CEL evaluated per request, because it
// reads the request.

// HTTPRequest is an HTTP request as policy sees it.
type HTTPRequest struct {
	Method string
	// Path is the decoded request path below the target's prefix; it
	// starts with '/'. The proxy refuses paths with dot segments, empty
	// segments or encoded slashes before asking, so that the path decided
	// is the path forwarded.
	Path   string
	Query  url.Values
	Header http.Header
}

// KubeRequest is a Kubernetes API request as the API server sees it
// (package kube parses it).
type KubeRequest struct {
	IsResourceRequest bool
	Path              string // non-resource requests: the path
	Verb              string // get, list, watch, create, update, patch, delete, deletecollection, proxy; lower-case method for non-resource
	APIGroup          string // "" for the core group
	Namespace         string // "" for cluster-scoped and all-namespaces requests
	Resource          string
	Subresource       string
	Name              string
	// Discovery marks a read-only discovery request (/api, /apis/...,
	// /version, /openapi/...), which kubectl makes before anything else:
	// allowed to whoever may use the target.
	Discovery bool
}

// RuleDiscovery names the builtin decision that lets kubectl discover
// the API of a target the subject may use.
const RuleDiscovery = "builtin: discovery"

// reqRule is one compiled http or kubernetes rule: it matches a request
// if any of its entries does.
type reqRule struct {
	ref  *ruleRef
	kind kind
	http []httpEntry
	kube []kubeEntry
}

type httpEntry struct {
	methods []string // nil: any
	paths   []segGlob
	when    *condition
}

type kubeEntry struct {
	namespaces []pattern // nil: any, cluster-scoped included
	groups     []string  // nil: any
	resources  []string
	verbs      []string
	names      []pattern // nil: any
	reveal     bool
}

// compileRequestRules compiles the http and kubernetes entries of rule r.
func (e *Engine) compileRequestRules(env *cel.Env, rp, pol string, r config.Rule, ref *ruleRef, k kind, fail func(path, msg string)) *reqRule {
	if len(r.HTTP) == 0 && len(r.Kubernetes) == 0 {
		return nil
	}
	rr := &reqRule{ref: ref, kind: k}
	for i, h := range r.HTTP {
		hp := fmt.Sprintf("%s.http[%d]", rp, i)
		var en httpEntry
		for _, m := range h.Methods {
			if m == "*" {
				en.methods = nil
				break
			}
			en.methods = append(en.methods, m)
		}
		for j, g := range h.Paths {
			if err := config.CheckPathGlob(g); err != nil {
				fail(fmt.Sprintf("%s.paths[%d]", hp, j), fmt.Sprintf("policy %q: invalid path glob %q: %v", pol, g, err))
				continue
			}
			en.paths = append(en.paths, compileSegGlob(strings.Split(g[1:], "/")))
		}
		if h.When != "" {
			c, err := compileCondition(env, h.When)
			if err != nil {
				fail(hp+".when", fmt.Sprintf("policy %q: %v", pol, err))
			}
			en.when = c
		}
		rr.http = append(rr.http, en)
	}
	for _, kr := range r.Kubernetes {
		en := kubeEntry{resources: kr.Resources, verbs: kr.Verbs, reveal: kr.RevealSecretData}
		for _, n := range kr.Namespaces {
			en.namespaces = append(en.namespaces, compilePattern(n))
		}
		if len(kr.APIGroups) > 0 && !slices.Contains(kr.APIGroups, "*") {
			en.groups = kr.APIGroups
		}
		for _, n := range kr.Names {
			en.names = append(en.names, compilePattern(n))
		}
		rr.kube = append(rr.kube, en)
	}
	return rr
}

// segGlob is a glob over a sequence of segments (path segments, JSON
// keys): each segment a pattern, or "**" for any run of segments, none
// included.
type segGlob []segment

type segment struct {
	anyRun bool // "**"
	p      pattern
}

func compileSegGlob(parts []string) segGlob {
	g := make(segGlob, len(parts))
	for i, s := range parts {
		if s == "**" {
			g[i].anyRun = true
		} else {
			g[i].p = compilePattern(s)
		}
	}
	return g
}

// match reports whether path matches the glob. Like pattern.match it
// backtracks only to the most recent "**", so its cost is bounded by
// len(path) times len(g), and it allocates nothing.
func (g segGlob) match(path []string) bool {
	gi, pi := 0, 0
	starG, starP := -1, 0
	for {
		if gi < len(g) {
			if g[gi].anyRun {
				starG, starP = gi, pi
				gi++
				continue
			}
			if pi < len(path) && g[gi].p.match(path[pi]) {
				gi++
				pi++
				continue
			}
		} else if pi == len(path) {
			return true
		}
		// Mismatch: let the last "**" take one more segment.
		if starG < 0 || starP >= len(path) {
			return false
		}
		starP++
		gi, pi = starG+1, starP
	}
}

func (en *httpEntry) match(s *Subject, r *HTTPRequest, segs []string, failClosed bool) bool {
	// HEAD is GET without the body: a rule naming GET covers it (and a
	// deny of GET denies it), as the API server and most routers do.
	if en.methods != nil && !slices.Contains(en.methods, r.Method) &&
		!(r.Method == "HEAD" && slices.Contains(en.methods, "GET")) {
		return false
	}
	if len(en.paths) > 0 {
		ok := false
		for _, g := range en.paths {
			if g.match(segs) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if en.when != nil {
		ok, err := en.when.eval(requestActivation(s, r))
		if err != nil {
			// A deny or review rule whose condition cannot be evaluated
			// applies (fail closed); an allow rule does not.
			return failClosed
		}
		return ok
	}
	return true
}

// kubeVerbAliases map rule verbs to the pod subresources they stand for.
var kubeVerbAliases = map[string]string{"exec": "exec", "attach": "attach", "port-forward": "portforward"}

func (en *kubeEntry) match(r *KubeRequest) bool {
	if !r.IsResourceRequest {
		return false
	}
	if en.namespaces != nil {
		if r.Namespace == "" {
			return false
		}
		ok := false
		for i := range en.namespaces {
			if en.namespaces[i].match(r.Namespace) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if en.groups != nil && !slices.Contains(en.groups, r.APIGroup) {
		return false
	}
	if en.names != nil {
		if r.Name == "" {
			return false
		}
		ok := false
		for i := range en.names {
			if en.names[i].match(r.Name) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, v := range en.verbs {
		if sub, alias := kubeVerbAliases[v]; alias {
			// "exec" on pods: the pods/exec subresource, whatever the
			// HTTP verb (kubectl uses POST, older clients GET).
			if r.Resource == "pods" && r.Subresource == sub && (resourceMatches(en.resources, "pods", "") || resourceMatches(en.resources, "pods", sub)) {
				return true
			}
			continue
		}
		if (v == "*" || v == r.Verb) && resourceMatches(en.resources, r.Resource, r.Subresource) {
			return true
		}
	}
	return false
}

// resourceMatches follows RBAC: "*" is everything, "pods" is pods
// without a subresource, "pods/log" that subresource, "pods/*" every
// subresource of pods, "*/log" log of every resource.
func resourceMatches(rules []string, res, sub string) bool {
	for _, rr := range rules {
		if rr == "*" {
			return true
		}
		base, rsub, hasSub := strings.Cut(rr, "/")
		if !hasSub {
			if sub == "" && base == res {
				return true
			}
			continue
		}
		if sub == "" {
			continue
		}
		if (base == "*" || base == res) && (rsub == "*" || rsub == sub) {
			return true
		}
	}
	return false
}

// DecideHTTP decides one request to an http target: deny > review >
// allow over the matching rules of the subject's policies, default deny.
func (s *Subject) DecideHTTP(target string, r *HTTPRequest) Decision {
	t := s.tables[target]
	if t == nil || t.connectRef() == nil {
		return s.noConnect(target)
	}
	// A trailing slash is decided as the path without it: most servers
	// route "/v1/refunds/" to "/v1/refunds", and a deny of one must
	// cover the other.
	p := strings.TrimSuffix(r.Path, "/")
	var segs []string
	if p != "" {
		segs = strings.Split(strings.TrimPrefix(p, "/"), "/")
	}
	what := r.Method + " " + r.Path
	return s.decideRequest(target, t, what, func(rr *reqRule) bool {
		for i := range rr.http {
			if rr.http[i].match(s, r, segs, rr.kind != kindAllow) {
				return true
			}
		}
		return false
	})
}

// DecideKube decides one Kubernetes API request. Discovery is allowed
// to whoever may use the target; other non-resource paths are denied.
// Decision.Reveal says whether Secret values in the response may be
// shown in clear.
func (s *Subject) DecideKube(target string, r *KubeRequest) Decision {
	t := s.tables[target]
	if t == nil || t.connectRef() == nil {
		return s.noConnect(target)
	}
	if !r.IsResourceRequest {
		if r.Discovery {
			return Decision{Effect: Allow, Rule: RuleDiscovery, Reason: "API discovery (" + r.Verb + " " + r.Path + ")"}
		}
		what := strings.ToUpper(r.Verb) + " " + r.Path
		return Decision{
			Effect:  Deny,
			Rule:    RuleDefaultDeny,
			Reason:  what + " is not allowed for subject " + strconv.Quote(s.subject) + " on target " + strconv.Quote(target) + " (no rule covers non-resource paths)",
			Summary: what + " is not allowed (default deny)",
		}
	}
	d := s.decideRequest(target, t, DescribeKube(r), func(rr *reqRule) bool {
		for i := range rr.kube {
			if rr.kube[i].match(r) {
				return true
			}
		}
		return false
	})
	if d.Effect == Allow && r.Resource == "secrets" {
		for _, rr := range t.req[kindAllow] {
			for i := range rr.kube {
				if rr.kube[i].reveal && rr.kube[i].match(r) {
					d.Reveal = true
				}
			}
		}
	}
	return d
}

// decideRequest applies the precedence over t's request rules.
func (s *Subject) decideRequest(target string, t *targetTable, what string, match func(*reqRule) bool) Decision {
	for _, rr := range t.req[kindDeny] {
		if match(rr) {
			return Decision{
				Effect:  Deny,
				Policy:  rr.ref.policy,
				Rule:    rr.ref.id,
				Reason:  what + " is denied by " + rr.ref.id + " for subject " + strconv.Quote(s.subject) + " on target " + strconv.Quote(target),
				Summary: what + " is denied",
			}
		}
	}
	var held []*ruleRef
	for _, rr := range t.req[kindReview] {
		if match(rr) {
			held = appendNew(held, rr.ref)
		}
	}
	if len(held) > 0 {
		d := Decision{
			Effect:  Review,
			Policy:  held[0].policy,
			Rule:    held[0].id,
			Reason:  what + " is held for review by " + held[0].id + " for subject " + strconv.Quote(s.subject) + " on target " + strconv.Quote(target),
			Summary: what + " needs approval",
		}
		finishReview(&d, held)
		return d
	}
	for _, rr := range t.req[kindAllow] {
		if match(rr) {
			return Decision{Effect: Allow, Policy: rr.ref.policy, Rule: rr.ref.id, Reason: rr.ref.allowReason}
		}
	}
	return Decision{
		Effect:  Deny,
		Rule:    RuleDefaultDeny,
		Reason:  what + " is not allowed for subject " + strconv.Quote(s.subject) + " on target " + strconv.Quote(target),
		Summary: what + " is not allowed (default deny)",
	}
}

// DescribeKube names a Kubernetes request for messages, the way kubectl
// users think of it: `delete pods "web-1" in namespace "staging"`,
// `list secrets in all namespaces`, `exec pods "web-1"`.
func DescribeKube(r *KubeRequest) string {
	if !r.IsResourceRequest {
		return strings.ToUpper(r.Verb) + " " + r.Path
	}
	verb, res := r.Verb, r.Resource
	if r.Subresource != "" {
		res += "/" + r.Subresource
	}
	if r.APIGroup != "" {
		res += "." + r.APIGroup
	}
	var b strings.Builder
	b.WriteString(verb + " " + res)
	if r.Name != "" {
		b.WriteString(" " + strconv.Quote(r.Name))
	}
	switch {
	case r.Namespace != "" && !(r.Resource == "namespaces" && r.Name == r.Namespace):
		b.WriteString(" in namespace " + strconv.Quote(r.Namespace))
	case r.Namespace == "" && (verb == "list" || verb == "watch" || verb == "deletecollection"):
		b.WriteString(" (cluster-wide)")
	}
	return b.String()
}

// Request conditions: the `when` of an http rule.

func newRequestCELEnv() (*cel.Env, error) {
	base, err := newCELEnv()
	if err != nil {
		return nil, err
	}
	return base.Extend(
		cel.Variable("method", cel.StringType),
		cel.Variable("path", cel.StringType),
		cel.Variable("query", cel.MapType(cel.StringType, cel.ListType(cel.StringType))),
		cel.Variable("headers", cel.MapType(cel.StringType, cel.StringType)),
	)
}

func requestActivation(s *Subject, r *HTTPRequest) activation {
	a := newActivation(s.principal)
	vars := make(map[string]any, len(a.vars)+4)
	for k, v := range a.vars {
		vars[k] = v
	}
	q := map[string][]string{}
	for k, v := range r.Query {
		q[k] = v
	}
	h := map[string]string{}
	for k, v := range r.Header {
		h[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	vars["method"], vars["path"], vars["query"], vars["headers"] = r.Method, r.Path, q, h
	return activation{vars: vars}
}
