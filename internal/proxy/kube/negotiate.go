package kube

import (
	"mime"
	"strings"
)

// AcceptJSON rewrites a client's Accept header so the API server answers in a
// form warden can inspect: JSON, or YAML when the client asked only for YAML.
// Protobuf (application/vnd.kubernetes.protobuf, which client-go prefers for
// built-in types), CBOR and every other type are dropped, never passed on:
// warden cannot mask what it cannot read, so it fails closed. Parameters of
// kept entries (as=Table;v=v1;g=meta.k8s.io, stream=watch, q) are kept, so
// server-side printing and metadata-only requests still work. "*/*" and
// "application/*" become application/json.
func AcceptJSON(accept string) string {
	var kept []string
	for _, part := range strings.Split(accept, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		mt, params, err := mime.ParseMediaType(part)
		if err != nil {
			continue
		}
		switch mt {
		case "application/json", "application/yaml":
		case "*/*", "application/*":
			mt = "application/json"
			if q, ok := params["q"]; ok {
				params = map[string]string{"q": q}
			} else {
				params = nil
			}
		default:
			continue
		}
		kept = append(kept, mime.FormatMediaType(mt, params))
	}
	if len(kept) == 0 {
		return "application/json"
	}
	return strings.Join(kept, ",")
}

// MaskableType reports whether a response Content-Type is one the masker can
// read: application/json (including a JSON watch stream,
// application/json;stream=watch) or application/yaml. Anything else on a
// response that could carry a Secret must be refused by the caller.
func MaskableType(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "application/yaml"
}
