package kube

import (
	"net/url"
	"strings"
)

// StreamInfo describes a streaming session on a pod: exec, attach or
// port-forward, negotiated as a SPDY or WebSocket upgrade.
type StreamInfo struct {
	Kind      string   // "exec", "attach" or "portforward"
	Command   []string // exec: the command and its arguments, in order
	Container string   // exec, attach: the container ("" lets the server pick the default)
	// Ports are the ports named in the query (?ports=, WebSocket
	// port-forward). SPDY port-forward (kubectl's default before v1.31) names
	// its ports in per-stream headers after the upgrade, so they are empty here.
	Ports      []string
	TTY, Stdin bool
}

// Stream reports whether ri is a streaming session on a pod and what it asks
// for. query is the request's parsed query.
//
// The RequestInfo verb of such a request is "create" (POST, SPDY) or "get"
// (GET, WebSocket). Since Kubernetes 1.35 the API server also requires
// "create" on the subresource for WebSocket upgrades
// (AuthorizePodWebsocketUpgradeCreatePermission, kubernetes#133515), so a
// caller should decide a streaming session as "create" whatever the method.
func Stream(ri *RequestInfo, query url.Values) (StreamInfo, bool) {
	if ri == nil || !ri.IsResourceRequest || ri.APIGroup != "" || ri.Resource != "pods" || ri.Name == "" {
		return StreamInfo{}, false
	}
	if ri.Verb != "get" && ri.Verb != "create" {
		return StreamInfo{}, false
	}
	switch ri.Subresource {
	case "exec", "attach":
		si := StreamInfo{
			Kind:      ri.Subresource,
			Container: first(query, "container"),
			TTY:       boolParam(query, "tty"),
			Stdin:     boolParam(query, "stdin"),
		}
		if ri.Subresource == "exec" {
			si.Command = append([]string(nil), query["command"]...)
		}
		return si, true
	case "portforward":
		var ports []string
		// The server accepts repeated ?ports= and comma-separated lists.
		for _, v := range query["ports"] {
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					ports = append(ports, p)
				}
			}
		}
		return StreamInfo{Kind: "portforward", Ports: ports}, true
	}
	return StreamInfo{}, false
}

// boolParam decodes a boolean query parameter as the API server's parameter
// codec does: absent is false; "0" and "false" (any case) are false; anything
// else, the empty string included, is true.
func boolParam(q url.Values, k string) bool {
	v, ok := q[k]
	if !ok || len(v) == 0 {
		return false
	}
	return !(v[0] == "0" || strings.EqualFold(v[0], "false"))
}
