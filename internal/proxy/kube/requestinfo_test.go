package kube

import (
	"errors"
	"flag"
	"io"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/sets"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2"
)

func TestMain(m *testing.M) {
	// The API server's factory logs every query it cannot decode; the
	// differential tests feed it many on purpose.
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("alsologtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	klog.SetOutput(io.Discard)
	os.Exit(m.Run())
}

// The request URLs below are what kubectl v1.32 sends (seen with -v=8).
func TestParseKubectl(t *testing.T) {
	tests := []struct {
		name, method, url string
		want              RequestInfo // Path and Parts are not compared
	}{
		{"get pods -n x", "GET", "/api/v1/namespaces/x/pods?limit=500",
			RequestInfo{IsResourceRequest: true, Verb: "list", APIPrefix: "api", APIVersion: "v1", Namespace: "x", Resource: "pods"}},
		{"get pods -A", "GET", "/api/v1/pods?limit=500",
			RequestInfo{IsResourceRequest: true, Verb: "list", APIPrefix: "api", APIVersion: "v1", Resource: "pods"}},
		{"get pod y -o yaml", "GET", "/api/v1/namespaces/x/pods/y",
			RequestInfo{IsResourceRequest: true, Verb: "get", APIPrefix: "api", APIVersion: "v1", Namespace: "x", Resource: "pods", Name: "y"}},
		{"delete pod y", "DELETE", "/api/v1/namespaces/x/pods/y",
			RequestInfo{IsResourceRequest: true, Verb: "delete", APIPrefix: "api", APIVersion: "v1", Namespace: "x", Resource: "pods", Name: "y"}},
		{"delete pods --all", "DELETE", "/api/v1/namespaces/x/pods",
			RequestInfo{IsResourceRequest: true, Verb: "deletecollection", APIPrefix: "api", APIVersion: "v1", Namespace: "x", Resource: "pods"}},
		{"logs", "GET", "/api/v1/namespaces/x/pods/y/log?container=c&follow=true",
			RequestInfo{IsResourceRequest: true, Verb: "get", APIPrefix: "api", APIVersion: "v1", Namespace: "x", Resource: "pods", Subresource: "log", Name: "y"}},
		{"exec (SPDY)", "POST", "/api/v1/namespaces/x/pods/y/exec?command=sh&command=-c&command=id&container=c&stdin=true&stdout=true&tty=true",
			RequestInfo{IsResourceRequest: true, Verb: "create", APIPrefix: "api", APIVersion: "v1", Namespace: "x", Resource: "pods", Subresource: "exec", Name: "y"}},
		{"exec (WebSocket)", "GET", "/api/v1/namespaces/x/pods/y/exec?command=id&stdout=true&stderr=true",
			RequestInfo{IsResourceRequest: true, Verb: "get", APIPrefix: "api", APIVersion: "v1", Namespace: "x", Resource: "pods", Subresource: "exec", Name: "y"}},
		{"port-forward", "POST", "/api/v1/namespaces/x/pods/y/portforward",
			RequestInfo{IsResourceRequest: true, Verb: "create", APIPrefix: "api", APIVersion: "v1", Namespace: "x", Resource: "pods", Subresource: "portforward", Name: "y"}},
		{"get secrets -w", "GET", "/api/v1/namespaces/x/secrets?resourceVersion=217&watch=true",
			RequestInfo{IsResourceRequest: true, Verb: "watch", APIPrefix: "api", APIVersion: "v1", Namespace: "x", Resource: "secrets"}},
		{"get secret s -w", "GET", "/api/v1/namespaces/x/secrets?fieldSelector=metadata.name%3Ds&resourceVersion=1&watch=true",
			RequestInfo{IsResourceRequest: true, Verb: "watch", APIPrefix: "api", APIVersion: "v1", Namespace: "x", Resource: "secrets", Name: "s", FieldSelector: "metadata.name=s"}},
		{"watch=1", "GET", "/api/v1/namespaces/x/pods?watch=1",
			RequestInfo{IsResourceRequest: true, Verb: "watch", APIPrefix: "api", APIVersion: "v1", Namespace: "x", Resource: "pods"}},
		{"watch=false", "GET", "/api/v1/namespaces/x/pods?watch=false",
			RequestInfo{IsResourceRequest: true, Verb: "list", APIPrefix: "api", APIVersion: "v1", Namespace: "x", Resource: "pods"}},
		{"legacy watch path", "GET", "/api/v1/watch/namespaces/x/pods",
			RequestInfo{IsResourceRequest: true, Verb: "watch", APIPrefix: "api", APIVersion: "v1", Namespace: "x", Resource: "pods"}},
		{"legacy watch of one", "GET", "/apis/apps/v1/watch/namespaces/x/deployments/d",
			RequestInfo{IsResourceRequest: true, Verb: "watch", APIPrefix: "apis", APIGroup: "apps", APIVersion: "v1", Namespace: "x", Resource: "deployments", Name: "d"}},
		{"apply (server-side)", "PATCH", "/apis/apps/v1/namespaces/x/deployments/d?fieldManager=kubectl&fieldValidation=Strict&force=false",
			RequestInfo{IsResourceRequest: true, Verb: "patch", APIPrefix: "apis", APIGroup: "apps", APIVersion: "v1", Namespace: "x", Resource: "deployments", Name: "d"}},
		{"create", "POST", "/api/v1/namespaces/x/configmaps?fieldManager=kubectl-create",
			RequestInfo{IsResourceRequest: true, Verb: "create", APIPrefix: "api", APIVersion: "v1", Namespace: "x", Resource: "configmaps"}},
		{"replace", "PUT", "/api/v1/namespaces/x/configmaps/c",
			RequestInfo{IsResourceRequest: true, Verb: "update", APIPrefix: "api", APIVersion: "v1", Namespace: "x", Resource: "configmaps", Name: "c"}},
		{"scale", "PATCH", "/apis/apps/v1/namespaces/x/deployments/d/scale",
			RequestInfo{IsResourceRequest: true, Verb: "patch", APIPrefix: "apis", APIGroup: "apps", APIVersion: "v1", Namespace: "x", Resource: "deployments", Subresource: "scale", Name: "d"}},
		{"HEAD is get", "HEAD", "/api/v1/namespaces/x/pods/y",
			RequestInfo{IsResourceRequest: true, Verb: "get", APIPrefix: "api", APIVersion: "v1", Namespace: "x", Resource: "pods", Name: "y"}},
		{"get namespaces", "GET", "/api/v1/namespaces",
			RequestInfo{IsResourceRequest: true, Verb: "list", APIPrefix: "api", APIVersion: "v1", Resource: "namespaces"}},
		{"get namespace foo", "GET", "/api/v1/namespaces/foo",
			RequestInfo{IsResourceRequest: true, Verb: "get", APIPrefix: "api", APIVersion: "v1", Namespace: "foo", Resource: "namespaces", Name: "foo"}},
		{"namespace status", "PUT", "/api/v1/namespaces/foo/status",
			RequestInfo{IsResourceRequest: true, Verb: "update", APIPrefix: "api", APIVersion: "v1", Namespace: "foo", Resource: "namespaces", Subresource: "status", Name: "foo"}},
		{"namespace finalize", "PUT", "/api/v1/namespaces/foo/finalize",
			RequestInfo{IsResourceRequest: true, Verb: "update", APIPrefix: "api", APIVersion: "v1", Namespace: "foo", Resource: "namespaces", Subresource: "finalize", Name: "foo"}},
		{"delete namespace", "DELETE", "/api/v1/namespaces/foo",
			RequestInfo{IsResourceRequest: true, Verb: "delete", APIPrefix: "api", APIVersion: "v1", Namespace: "foo", Resource: "namespaces", Name: "foo"}},
		{"pod proxy", "GET", "/api/v1/namespaces/x/pods/y/proxy/any/path",
			RequestInfo{IsResourceRequest: true, Verb: "get", APIPrefix: "api", APIVersion: "v1", Namespace: "x", Resource: "pods", Subresource: "proxy", Name: "y"}},
		{"service proxy", "POST", "/api/v1/namespaces/x/services/https:web:443/proxy/api",
			RequestInfo{IsResourceRequest: true, Verb: "create", APIPrefix: "api", APIVersion: "v1", Namespace: "x", Resource: "services", Subresource: "proxy", Name: "https:web:443"}},
		{"node proxy", "GET", "/api/v1/nodes/n1/proxy/stats/summary",
			RequestInfo{IsResourceRequest: true, Verb: "get", APIPrefix: "api", APIVersion: "v1", Resource: "nodes", Subresource: "proxy", Name: "n1"}},
		{"proxy verb path", "GET", "/api/v1/proxy/namespaces/x/pods/y/a/b",
			RequestInfo{IsResourceRequest: true, Verb: "proxy", APIPrefix: "api", APIVersion: "v1", Namespace: "x", Resource: "pods", Name: "y"}},
		{"cluster-scoped CRD", "GET", "/apis/example.com/v1/widgets?labelSelector=a%3Db",
			RequestInfo{IsResourceRequest: true, Verb: "list", APIPrefix: "apis", APIGroup: "example.com", APIVersion: "v1", Resource: "widgets", LabelSelector: "a=b"}},
		{"name selector on a bad label selector is ignored", "GET", "/api/v1/namespaces/x/pods?fieldSelector=metadata.name%3Dp&labelSelector=%21%21",
			RequestInfo{IsResourceRequest: true, Verb: "list", APIPrefix: "api", APIVersion: "v1", Namespace: "x", Resource: "pods", FieldSelector: "metadata.name=p", LabelSelector: "!!"}},
		{"name selector with another term", "GET", "/api/v1/namespaces/x/pods?fieldSelector=status.phase%3DRunning%2Cmetadata.name%3D%3Dp",
			RequestInfo{IsResourceRequest: true, Verb: "list", APIPrefix: "api", APIVersion: "v1", Namespace: "x", Resource: "pods", Name: "p", FieldSelector: "status.phase=Running,metadata.name==p"}},
		{"name selector != is not a name", "GET", "/api/v1/namespaces/x/pods?fieldSelector=metadata.name%21%3Dp",
			RequestInfo{IsResourceRequest: true, Verb: "list", APIPrefix: "api", APIVersion: "v1", Namespace: "x", Resource: "pods", FieldSelector: "metadata.name!=p"}},
		{"deletecollection with selector", "DELETE", "/api/v1/namespaces/x/pods?labelSelector=app%3Dweb",
			RequestInfo{IsResourceRequest: true, Verb: "deletecollection", APIPrefix: "api", APIVersion: "v1", Namespace: "x", Resource: "pods", LabelSelector: "app=web"}},
		{"api-resources: /api", "GET", "/api",
			RequestInfo{Verb: "get"}},
		{"api-resources: /apis", "GET", "/apis",
			RequestInfo{Verb: "get"}},
		{"api-resources: /api/v1", "GET", "/api/v1",
			RequestInfo{Verb: "get"}},
		{"api-resources: /apis/apps/v1", "GET", "/apis/apps/v1",
			RequestInfo{Verb: "get", APIPrefix: "apis"}},
		{"version", "GET", "/version?timeout=32s",
			RequestInfo{Verb: "get"}},
		{"openapi v3 group", "GET", "/openapi/v3/apis/apps/v1?hash=ABC",
			RequestInfo{Verb: "get"}},
		{"healthz post", "POST", "/healthz",
			RequestInfo{Verb: "post"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(tt.method, u.EscapedPath(), u.Query())
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := tt.want
			want.Path, want.Parts = got.Path, got.Parts
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("Parse(%s %s)\n got %+v\nwant %+v", tt.method, tt.url, *got, want)
			}
			if got.Path != u.EscapedPath() {
				t.Errorf("Path = %q", got.Path)
			}
			compareWithAPIServer(t, tt.method, u)
		})
	}
}

func TestParseRefuses(t *testing.T) {
	for _, p := range []string{
		"", "pods", "/", "//", "/api//v1/pods", "/api/v1/pods/", "/api/v1/namespaces/x/pods/../secrets",
		"/api/v1/./pods", "/api/v1/namespaces/x%2Fy/pods", "/api/v1/namespaces/x/pods/%2e%2e",
		"/api/v1/pods/a b", "/api/v1/pods/a\x00", "/api/v1/watch", "/apis/apps/v1/proxy",
		"/logs", "/logs/kube-apiserver.log", "/debug/pprof/", "/debug/pprof/heap", "/ui", "/openapi/v1",
		"/metrics/slis", "/version/x", "/healthz/a/b", "/unknown",
	} {
		if ri, err := Parse("GET", p, nil); err == nil {
			t.Errorf("Parse(GET %q) = %+v, want error", p, ri)
		} else if !errors.Is(err, ErrUnknownPath) {
			t.Errorf("Parse(GET %q) error %v does not wrap ErrUnknownPath", p, err)
		}
	}
	for _, m := range []string{"OPTIONS", "TRACE", "CONNECT", "get", "PROPFIND"} {
		if _, err := Parse(m, "/api/v1/pods", nil); err == nil {
			t.Errorf("Parse(%s /api/v1/pods) succeeded", m)
		}
	}
}

func TestIsDiscovery(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"GET", "/api", true}, {"GET", "/api/v1", true}, {"GET", "/apis", true}, {"HEAD", "/apis", true},
		{"GET", "/apis/apps", true}, {"GET", "/apis/apps/v1", true}, {"GET", "/version", true},
		{"GET", "/openapi/v2", true}, {"GET", "/openapi/v3", true}, {"GET", "/openapi/v3/api/v1", true},
		{"POST", "/api", false}, {"GET", "/api/v1/pods", false}, {"GET", "/healthz", false},
		{"GET", "/metrics", false}, {"GET", "/.well-known/openid-configuration", false},
	} {
		ri, err := Parse(tc.method, tc.path, nil)
		if err != nil {
			t.Fatalf("Parse(%s %s): %v", tc.method, tc.path, err)
		}
		if got := IsDiscovery(ri); got != tc.want {
			t.Errorf("IsDiscovery(%s %s) = %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
	if IsDiscovery(nil) {
		t.Error("IsDiscovery(nil)")
	}
}

// apiServerFactory is the API server's own RequestInfoFactory as
// kube-apiserver configures it (k8s.io/apiserver pkg/server/config.go).
var apiServerFactory = &apirequest.RequestInfoFactory{
	APIPrefixes:          sets.NewString("api", "apis"),
	GrouplessAPIPrefixes: sets.NewString("api"),
}

// compareWithAPIServer checks Parse against the API server's factory for one
// request: where Parse answers, every field must agree; Parse may refuse
// what the API server would accept (it is stricter by design), but must not
// accept what the API server rejects.
func compareWithAPIServer(t *testing.T, method string, u *url.URL) {
	t.Helper()
	// What the API server sees: net/http has decoded the path.
	req := &http.Request{Method: method, URL: u}
	want, wantErr := apiServerFactory.NewRequestInfo(req)

	got, err := Parse(method, u.EscapedPath(), u.Query())
	if err != nil {
		return
	}
	if wantErr != nil {
		t.Fatalf("Parse(%s %s) = %+v; the API server refuses it: %v", method, u, got, wantErr)
	}
	w := RequestInfo{
		IsResourceRequest: want.IsResourceRequest, Path: want.Path, Verb: want.Verb,
		APIPrefix: want.APIPrefix, APIGroup: want.APIGroup, APIVersion: want.APIVersion,
		Namespace: want.Namespace, Resource: want.Resource, Subresource: want.Subresource,
		Name: want.Name, Parts: want.Parts, FieldSelector: want.FieldSelector, LabelSelector: want.LabelSelector,
	}
	if len(w.Parts) == 0 {
		w.Parts = nil
	}
	if !reflect.DeepEqual(*got, w) {
		t.Fatalf("Parse(%s %s) disagrees with the API server\n got %#v\nwant %#v", method, u, *got, w)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []struct{ m, u string }{
		{"GET", "/api/v1/namespaces/x/pods?watch=true"},
		{"GET", "/api/v1/watch/namespaces/x/pods/y"},
		{"DELETE", "/apis/apps/v1/namespaces/x/deployments"},
		{"GET", "/api/v1/namespaces/x/secrets?fieldSelector=metadata.name%3Ds&limit=1"},
		{"GET", "/api/v1/namespaces/x/secrets?fieldSelector=metadata.name%3D%3Ds%2Ca%3Db&labelSelector=a+in+%28b%29"},
		{"GET", "/api/v1/namespaces/x/pods?fieldSelector=metadata.name%3D..&timeoutSeconds=x"},
		{"POST", "/api/v1/namespaces/x/pods/y/exec?command=ls"},
		{"PUT", "/api/v1/namespaces/foo/finalize"},
		{"GET", "/api/v1/proxy/nodes/n/stats"},
		{"HEAD", "/apis/g/v/r/n/s/extra"},
		{"GET", "/openapi/v3/apis"},
		{"PATCH", "/api/v1/namespaces"},
	} {
		f.Add(s.m, s.u)
	}
	f.Fuzz(func(t *testing.T, method, raw string) {
		if !strings.HasPrefix(raw, "/") {
			return
		}
		u, err := url.ParseRequestURI(raw)
		if err != nil || u.Host != "" || u.Opaque != "" {
			return
		}
		compareWithAPIServer(t, method, u)
	})
}
