package kube

import (
	"encoding/json"
	"net/http"
)

// status mirrors the JSON shape of metav1.Status (k8s.io/apimachinery
// pkg/apis/meta/v1/types.go), which kubectl decodes to print an error.
type status struct {
	Kind       string         `json:"kind"`
	APIVersion string         `json:"apiVersion"`
	Metadata   struct{}       `json:"metadata"`
	Status     string         `json:"status"`
	Message    string         `json:"message,omitempty"`
	Reason     string         `json:"reason,omitempty"`
	Details    *statusDetails `json:"details,omitempty"`
	Code       int            `json:"code"`
}

type statusDetails struct {
	Name  string `json:"name,omitempty"`
	Group string `json:"group,omitempty"`
	// Kind is the resource (e.g. "pods"), as the API server fills it in for
	// Forbidden and NotFound errors.
	Kind string `json:"kind,omitempty"`
}

// Status builds a Kubernetes metav1.Status body (kind Status, apiVersion v1,
// status Failure) with the message kubectl prints ("Error from server
// (Forbidden): <message>"). reason is a metav1.StatusReason such as
// "Forbidden"; when empty it is derived from code. details carry the name,
// group and resource of ri when ri is a resource request. Serve it with
// Content-Type application/json.
func Status(code int, reason, message string, ri *RequestInfo) []byte {
	s := status{Kind: "Status", APIVersion: "v1", Status: "Failure", Message: message, Reason: reason, Code: code}
	if s.Reason == "" {
		s.Reason = reasonForCode(code)
	}
	if ri != nil && ri.IsResourceRequest && ri.Resource != "" {
		kind := ri.Resource
		if ri.Subresource != "" {
			kind += "/" + ri.Subresource
		}
		s.Details = &statusDetails{Name: ri.Name, Group: ri.APIGroup, Kind: kind}
	}
	b, err := json.Marshal(s)
	if err != nil { // cannot happen: only strings and ints
		return []byte(`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","code":500}`)
	}
	return b
}

// reasonForCode follows the StatusReason values of metav1 for the codes warden
// answers with.
func reasonForCode(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "BadRequest"
	case http.StatusUnauthorized:
		return "Unauthorized"
	case http.StatusForbidden:
		return "Forbidden"
	case http.StatusNotFound:
		return "NotFound"
	case http.StatusMethodNotAllowed:
		return "MethodNotAllowed"
	case http.StatusNotAcceptable:
		return "NotAcceptable"
	case http.StatusConflict:
		return "Conflict"
	case http.StatusRequestEntityTooLarge:
		return "RequestEntityTooLarge"
	case http.StatusUnsupportedMediaType:
		return "UnsupportedMediaType"
	case http.StatusTooManyRequests:
		return "TooManyRequests"
	case http.StatusGatewayTimeout:
		return "Timeout"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable"
	}
	if code >= 500 {
		return "InternalError"
	}
	return ""
}
