package kube

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
)

// RequestInfo is what the API server makes of a request. Its fields have the
// semantics of k8s.io/apiserver/pkg/endpoints/request.RequestInfo, as computed
// by RequestInfoFactory for a server whose API prefixes are "api" (groupless)
// and "apis".
type RequestInfo struct {
	// IsResourceRequest is false for discovery, version, openapi, health and
	// the other non-resource endpoints.
	IsResourceRequest bool
	// Path is the API path, e.g. /api/v1/namespaces/a/pods.
	Path string
	// Verb is the Kubernetes verb (get list watch create update patch delete
	// deletecollection proxy) for resource requests and the lower-case HTTP
	// method for non-resource requests.
	Verb string

	APIPrefix   string // "api" or "apis"
	APIGroup    string // "" for the core group
	APIVersion  string
	Namespace   string
	Resource    string
	Subresource string
	Name        string
	// Parts are the path segments from the resource on (after the namespace
	// segments were dropped, unless the resource is namespaces itself).
	Parts []string

	// FieldSelector and LabelSelector are the raw selectors of a list, watch
	// or deletecollection request, as the API server records them.
	FieldSelector string
	LabelSelector string
}

// ErrUnknownPath is wrapped by every error Parse returns: the path is not one
// warden can map onto the API server's request model without guessing.
var ErrUnknownPath = errors.New("kube: path not understood")

// Verbs the API server takes from the path rather than the method.
const (
	verbWatch = "watch"
	verbProxy = "proxy"
)

// Parse computes the RequestInfo of a request whose URL path has already had
// warden's /t/<target> prefix removed. path must be the escaped (wire) form of
// the path; query is the parsed raw query.
//
// Parse follows RequestInfoFactory.NewRequestInfo of k8s.io/apiserver v0.37
// (pkg/endpoints/request/requestinfo.go) and is stricter in these ways, each
// returning an error wrapping ErrUnknownPath:
//
//   - any '%' in the path (encoded slashes and the like): warden's view and the
//     API server's view of a path must be the same bytes, so nothing is
//     decoded;
//   - empty segments ("//", a trailing slash), "." and "..", and control
//     characters or spaces;
//   - resource requests with a method that maps to no verb (OPTIONS, TRACE…);
//   - non-resource paths other than the known endpoints (discovery, version,
//     openapi, health, metrics, service-account issuer discovery);
//   - the apiserver's own error case: /api/v1/watch or /api/v1/proxy with
//     nothing after it.
func Parse(method, path string, query url.Values) (*RequestInfo, error) {
	segs, err := splitAPIPath(path)
	if err != nil {
		return nil, err
	}
	ri := &RequestInfo{Path: path, Verb: strings.ToLower(method)}

	// The resource model needs a prefix, a version and a resource at least;
	// /apis additionally needs a group. Anything shorter is non-resource.
	if len(segs) < 3 || (segs[0] != "api" && segs[0] != "apis") || (segs[0] == "apis" && len(segs) < 4) {
		if !knownNonResource(segs) {
			return nil, fmt.Errorf("%w: %q is not a known non-resource endpoint", ErrUnknownPath, path)
		}
		// As in the API server, /apis/<group>/<version> keeps its prefix
		// although it is not a resource request.
		if len(segs) == 3 && segs[0] == "apis" {
			ri.APIPrefix = segs[0]
		}
		return ri, nil
	}

	ri.IsResourceRequest = true
	ri.APIPrefix = segs[0]
	rest := segs[1:]
	if ri.APIPrefix == "apis" {
		ri.APIGroup, rest = rest[0], rest[1:]
	}
	ri.APIVersion, rest = rest[0], rest[1:]

	// /api/v1/watch/... and /api/v1/proxy/...: the verb is in the path.
	verbFromPath := false
	if rest[0] == verbWatch || rest[0] == verbProxy {
		if len(rest) < 2 {
			return nil, fmt.Errorf("%w: %q names no resource after %q", ErrUnknownPath, path, rest[0])
		}
		ri.Verb, rest = rest[0], rest[1:]
		verbFromPath = true
	} else {
		ri.Verb = methodVerb(method)
		if ri.Verb == "" {
			return nil, fmt.Errorf("%w: method %q has no Kubernetes verb", ErrUnknownPath, method)
		}
	}

	// namespaces/<ns>/<resource>...: the namespace scopes what follows, except
	// for the namespace's own subresources (status, finalize), where the
	// resource is the namespace itself.
	if rest[0] == "namespaces" && len(rest) > 1 {
		ri.Namespace = rest[1]
		if len(rest) > 2 && rest[2] != "status" && rest[2] != "finalize" {
			rest = rest[2:]
		}
	}
	ri.Parts = rest

	ri.Resource = rest[0]
	if len(rest) >= 2 {
		ri.Name = rest[1]
	}
	// The proxy verb keeps everything after the name as the proxied path.
	if len(rest) >= 3 && ri.Verb != verbProxy {
		ri.Subresource = rest[2]
	}

	// A GET on a collection is a list, or a watch when ?watch= says so. A
	// single-name field selector names the object, as kubectl uses it for
	// `get pod x -w`.
	if ri.Name == "" && ri.Verb == "get" {
		ri.Verb = "list"
		if boolParam(query, "watch") {
			ri.Verb = verbWatch
		}
		if listOptionsDecode(query) {
			if sel, err := fields.ParseSelector(first(query, "fieldSelector")); err == nil {
				if name, ok := sel.RequiresExactMatch("metadata.name"); ok && len(content.IsPathSegmentName(name)) == 0 {
					ri.Name = name
				}
			}
		}
	}
	if ri.Name == "" && ri.Verb == "delete" {
		ri.Verb = "deletecollection"
	}
	if !verbFromPath && (ri.Verb == "list" || ri.Verb == verbWatch || ri.Verb == "deletecollection") {
		ri.FieldSelector = first(query, "fieldSelector")
		ri.LabelSelector = first(query, "labelSelector")
	}
	return ri, nil
}

// methodVerb maps an HTTP method to the verb of a resource request. HEAD is a
// get, as in the API server.
func methodVerb(method string) string {
	switch method {
	case http.MethodPost:
		return "create"
	case http.MethodGet, http.MethodHead:
		return "get"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	}
	return ""
}

// listOptionsDecode reports whether the API server would decode the query into
// ListOptions without error. When it would not, the server ignores the field
// selector for RequestInfo (and later rejects the request with 400), so no name
// may be taken from it.
func listOptionsDecode(q url.Values) bool {
	for _, k := range []string{"timeoutSeconds", "limit"} {
		if v, ok := q[k]; ok && len(v) > 0 {
			if _, err := strconv.ParseInt(v[0], 10, 64); err != nil {
				return false
			}
		}
	}
	if _, err := labels.Parse(first(q, "labelSelector")); err != nil {
		return false
	}
	if _, err := fields.ParseSelector(first(q, "fieldSelector")); err != nil {
		return false
	}
	return true
}

func first(q url.Values, k string) string {
	if v := q[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// splitAPIPath splits an absolute API path into segments, refusing anything
// that a server, an intermediary and warden might read differently.
func splitAPIPath(path string) ([]string, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("%w: %q is not absolute", ErrUnknownPath, path)
	}
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case c == '%':
			return nil, fmt.Errorf("%w: %q has a percent-encoded byte", ErrUnknownPath, path)
		case c <= ' ' || c == 0x7f || c == '?' || c == '#' || c == '\\':
			return nil, fmt.Errorf("%w: %q has a byte %#x not allowed in a path", ErrUnknownPath, path, c)
		}
	}
	segs := strings.Split(path[1:], "/")
	for _, s := range segs {
		if s == "" || s == "." || s == ".." {
			return nil, fmt.Errorf("%w: %q has an empty or dot segment", ErrUnknownPath, path)
		}
	}
	return segs, nil
}

// knownNonResource reports whether segs name one of the API server's
// non-resource endpoints that warden lets policy decide on. Everything else
// (/logs, /debug/..., /ui, unknown paths) is refused.
func knownNonResource(segs []string) bool {
	switch segs[0] {
	case "api":
		return len(segs) <= 2 // /api, /api/<version>
	case "apis":
		return len(segs) <= 3 // /apis, /apis/<group>, /apis/<group>/<version>
	case "version", "metrics":
		return len(segs) == 1
	case "openapi":
		return (len(segs) == 2 && segs[1] == "v2") || (len(segs) >= 2 && segs[1] == "v3")
	case "healthz", "livez", "readyz":
		return len(segs) <= 2 // /healthz, /healthz/<check>
	case ".well-known":
		return len(segs) == 2 && segs[1] == "openid-configuration"
	case "openid":
		return len(segs) == 3 && segs[1] == "v1" && segs[2] == "jwks"
	}
	return false
}

// IsDiscovery reports whether a non-resource request is read-only discovery,
// version or openapi (GET or HEAD of /api, /api/<v>, /apis, /apis/<g>,
// /apis/<g>/<v>, /version, /openapi/v2, /openapi/v3, /openapi/v3/...): what
// kubectl reads before any resource request.
func IsDiscovery(ri *RequestInfo) bool {
	if ri == nil || ri.IsResourceRequest || (ri.Verb != "get" && ri.Verb != "head") {
		return false
	}
	segs, err := splitAPIPath(ri.Path)
	if err != nil {
		return false
	}
	switch segs[0] {
	case "api":
		return len(segs) <= 2
	case "apis":
		return len(segs) <= 3
	case "version":
		return len(segs) == 1
	case "openapi":
		return (len(segs) == 2 && segs[1] == "v2") || (len(segs) >= 2 && segs[1] == "v3")
	}
	return false
}
