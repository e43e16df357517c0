package kube

import (
	"encoding/json"
	"net/url"
	"reflect"
	"testing"
)

func TestStatus(t *testing.T) {
	ri, err := Parse("DELETE", "/api/v1/namespaces/prod/pods/web-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := Status(403, "Forbidden", `warden: policy "agents" rule 2 holds delete for review (id r-7)`, ri)
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{}, "status": "Failure",
		"message": `warden: policy "agents" rule 2 holds delete for review (id r-7)`,
		"reason":  "Forbidden", "code": float64(403),
		"details": map[string]any{"name": "web-1", "kind": "pods"},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("Status =\n%s\nwant %v", b, want)
	}

	// Without a request (or for a non-resource one): no details; reason from code.
	var s2 map[string]any
	if err := json.Unmarshal(Status(404, "", "no such target", nil), &s2); err != nil {
		t.Fatal(err)
	}
	if s2["reason"] != "NotFound" || s2["details"] != nil || s2["code"] != float64(404) {
		t.Errorf("Status(404) = %v", s2)
	}

	ri, _ = Parse("POST", "/api/v1/namespaces/x/pods/y/exec", nil)
	var s3 struct {
		Details struct{ Name, Group, Kind string }
	}
	json.Unmarshal(Status(403, "Forbidden", "m", ri), &s3)
	if s3.Details.Kind != "pods/exec" || s3.Details.Name != "y" {
		t.Errorf("exec details = %+v", s3.Details)
	}
}

func TestStream(t *testing.T) {
	tests := []struct {
		method, url string
		want        StreamInfo
		ok          bool
	}{
		{"POST", "/api/v1/namespaces/x/pods/y/exec?command=sh&command=-c&command=rm+-rf+%2F&container=app&stdin=true&stdout=true&tty=true",
			StreamInfo{Kind: "exec", Command: []string{"sh", "-c", "rm -rf /"}, Container: "app", TTY: true, Stdin: true}, true},
		{"GET", "/api/v1/namespaces/x/pods/y/exec?command=id&stdout=1&stdin=false&tty=0",
			StreamInfo{Kind: "exec", Command: []string{"id"}}, true},
		{"POST", "/api/v1/namespaces/x/pods/y/attach?container=c&stdin=&tty=TRUE",
			StreamInfo{Kind: "attach", Container: "c", Stdin: true, TTY: true}, true},
		{"POST", "/api/v1/namespaces/x/pods/y/portforward", StreamInfo{Kind: "portforward"}, true},
		{"GET", "/api/v1/namespaces/x/pods/y/portforward?ports=8080&ports=9090,9091",
			StreamInfo{Kind: "portforward", Ports: []string{"8080", "9090", "9091"}}, true},
		{"GET", "/api/v1/namespaces/x/pods/y/log", StreamInfo{}, false},
		{"DELETE", "/api/v1/namespaces/x/pods/y/exec", StreamInfo{}, false},
		{"POST", "/apis/example.com/v1/namespaces/x/pods/y/exec", StreamInfo{}, false},
		{"GET", "/api/v1/namespaces/x/pods/y/proxy/exec", StreamInfo{}, false},
	}
	for _, tt := range tests {
		u, _ := url.Parse(tt.url)
		ri, err := Parse(tt.method, u.EscapedPath(), u.Query())
		if err != nil {
			t.Fatal(err)
		}
		got, ok := Stream(ri, u.Query())
		if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Stream(%s %s) = %+v, %v; want %+v, %v", tt.method, tt.url, got, ok, tt.want, tt.ok)
		}
	}
	if _, ok := Stream(nil, nil); ok {
		t.Error("Stream(nil)")
	}
}

func TestAcceptJSON(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", "application/json"},
		// kubectl get (server-side printing)
		{"application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
			"application/json; as=Table; g=meta.k8s.io; v=v1,application/json; as=Table; g=meta.k8s.io; v=v1beta1,application/json"},
		// client-go with protobuf preferred (controllers, kubectl for some built-ins)
		{"application/vnd.kubernetes.protobuf, */*", "application/json"},
		{"application/vnd.kubernetes.protobuf,application/json", "application/json"},
		{"application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io", "application/json"},
		{"application/cbor", "application/json"},
		{"application/yaml", "application/yaml"},
		{"application/yaml, application/vnd.kubernetes.protobuf", "application/yaml"},
		{"application/json;stream=watch", "application/json; stream=watch"},
		{"*/*;q=0.8", "application/json; q=0.8"},
		{"text/html, garbage;;;", "application/json"},
	} {
		if got := AcceptJSON(tt.in); got != tt.want {
			t.Errorf("AcceptJSON(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMaskableType(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json": true, "application/json; charset=utf-8": true, "application/json;stream=watch": true,
		"application/yaml": true, "application/vnd.kubernetes.protobuf": false,
		"application/vnd.kubernetes.protobuf;stream=watch": false, "application/cbor": false,
		"text/plain": false, "": false, "application/json-patch+json": false,
	} {
		if got := MaskableType(ct); got != want {
			t.Errorf("MaskableType(%q) = %v", ct, got)
		}
	}
}
