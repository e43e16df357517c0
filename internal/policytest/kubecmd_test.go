package policytest

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/policy"
)

func TestParseKubeCommand(t *testing.T) {
	// res builds the expected resource request.
	res := func(verb, group, resource, sub, ns, name string) *policy.KubeRequest {
		return &policy.KubeRequest{IsResourceRequest: true, Verb: verb, APIGroup: group, Resource: resource, Subresource: sub, Namespace: ns, Name: name}
	}
	tests := []struct {
		cmd  string
		want *policy.KubeRequest
	}{
		// get, list, watch
		{"get pods -n staging", res("list", "", "pods", "", "staging", "")},
		{"kubectl get pods -n staging", res("list", "", "pods", "", "staging", "")},
		{"/usr/local/bin/kubectl get po", res("list", "", "pods", "", "default", "")},
		{"get pods", res("list", "", "pods", "", "default", "")},
		{"get pods -A", res("list", "", "pods", "", "", "")},
		{"get pods --all-namespaces", res("list", "", "pods", "", "", "")},
		{"get pod web -n x", res("get", "", "pods", "", "x", "web")},
		{"get -n x pod web", res("get", "", "pods", "", "x", "web")},
		{"get pod web --namespace=x", res("get", "", "pods", "", "x", "web")},
		{"get pod web -nx", res("get", "", "pods", "", "x", "web")},
		{"get pod web -n=x", res("get", "", "pods", "", "x", "web")},
		{"kubectl -n x get pod web", res("get", "", "pods", "", "x", "web")},
		{"kubectl --namespace=x get pod web", res("get", "", "pods", "", "x", "web")},
		{"get pod/web", res("get", "", "pods", "", "default", "web")},
		{"get Pods", res("list", "", "pods", "", "default", "")},
		{"get Deployment web -n x", res("get", "apps", "deployments", "", "x", "web")},
		{"get secrets -w", res("watch", "", "secrets", "", "default", "")},
		{"get secrets --watch -n prod", res("watch", "", "secrets", "", "prod", "")},
		{"get secret db -w -n prod", res("watch", "", "secrets", "", "prod", "db")},
		{"get pods -Aw", res("watch", "", "pods", "", "", "")},
		{"get pods -o yaml -l app=web -n staging", res("list", "", "pods", "", "staging", "")},
		{"get pod web -o jsonpath='{.status.phase}'", res("get", "", "pods", "", "default", "web")},
		{"get pod web --subresource=status", res("get", "", "pods", "status", "default", "web")},
		{"describe pods -n staging", res("list", "", "pods", "", "staging", "")},
		{"describe deploy web", res("get", "apps", "deployments", "", "default", "web")},
		// resources and their groups and scopes
		{"get svc", res("list", "", "services", "", "default", "")},
		{"get deploy", res("list", "apps", "deployments", "", "default", "")},
		{"get deployments.apps", res("list", "apps", "deployments", "", "default", "")},
		{"get deploy.apps", res("list", "apps", "deployments", "", "default", "")},
		{"get deployments.v1.apps web", res("get", "apps", "deployments", "", "default", "web")},
		{"get pods.v1", res("list", "", "pods", "", "default", "")},
		{"get rs", res("list", "apps", "replicasets", "", "default", "")},
		{"get sts", res("list", "apps", "statefulsets", "", "default", "")},
		{"get ds -A", res("list", "apps", "daemonsets", "", "", "")},
		{"get jobs", res("list", "batch", "jobs", "", "default", "")},
		{"get cj", res("list", "batch", "cronjobs", "", "default", "")},
		{"get cm app", res("get", "", "configmaps", "", "default", "app")},
		{"get ns", res("list", "", "namespaces", "", "", "")},
		{"get ns staging -n other", res("get", "", "namespaces", "", "", "staging")},
		{"get no", res("list", "", "nodes", "", "", "")},
		{"get pv -n x", res("list", "", "persistentvolumes", "", "", "")},
		{"get pvc", res("list", "", "persistentvolumeclaims", "", "default", "")},
		{"get sa", res("list", "", "serviceaccounts", "", "default", "")},
		{"get ing", res("list", "networking.k8s.io", "ingresses", "", "default", "")},
		{"get roles", res("list", "rbac.authorization.k8s.io", "roles", "", "default", "")},
		{"get rolebindings", res("list", "rbac.authorization.k8s.io", "rolebindings", "", "default", "")},
		{"get clusterroles", res("list", "rbac.authorization.k8s.io", "clusterroles", "", "", "")},
		{"get clusterrolebinding admin", res("get", "rbac.authorization.k8s.io", "clusterrolebindings", "", "", "admin")},
		{"get ev", res("list", "", "events", "", "default", "")},
		{"get crd", res("list", "apiextensions.k8s.io", "customresourcedefinitions", "", "", "")},
		// delete
		{"delete pods web -n x", res("delete", "", "pods", "", "x", "web")},
		{"delete pod/web", res("delete", "", "pods", "", "default", "web")},
		{"delete pods --all -n x", res("deletecollection", "", "pods", "", "x", "")},
		{"delete pods -n x", res("delete", "", "pods", "", "x", "")}, // DESIGN's explain example: any pod
		{"delete pods -l app=web -n x", res("deletecollection", "", "pods", "", "x", "")},
		{"delete pods --all -A", res("deletecollection", "", "pods", "", "", "")},
		{"delete ns staging", res("delete", "", "namespaces", "", "", "staging")},
		{"delete pod web --grace-period=0 --force", res("delete", "", "pods", "", "default", "web")},
		// pods: logs, exec, attach, port-forward
		{"logs web", res("get", "", "pods", "log", "default", "web")},
		{"logs -f web -c app --tail=10 -n x", res("get", "", "pods", "log", "x", "web")},
		{"logs pod/web app", res("get", "", "pods", "log", "default", "web")},
		{"logs web -p", res("get", "", "pods", "log", "default", "web")},
		{"exec web -- ls", res("create", "", "pods", "exec", "default", "web")},
		{"exec -it web -- sh", res("create", "", "pods", "exec", "default", "web")},
		{"exec -it web -n x -c app -- sh -c 'rm -rf /'", res("create", "", "pods", "exec", "x", "web")},
		{"exec pod/web -n x -- ls -n y", res("create", "", "pods", "exec", "x", "web")},
		{"attach web", res("create", "", "pods", "attach", "default", "web")},
		{"attach -it web -n x", res("create", "", "pods", "attach", "x", "web")},
		{"port-forward web 8080", res("create", "", "pods", "portforward", "default", "web")},
		{"port-forward pod/web 8080:80 9090 -n x", res("create", "", "pods", "portforward", "x", "web")},
		// writes
		{"create deployment web --image=nginx -n x", res("create", "apps", "deployments", "", "x", "")},
		{"create namespace x", res("create", "", "namespaces", "", "", "")},
		{"create secret generic db --from-literal=password=x", res("create", "", "secrets", "", "default", "")},
		{"create service clusterip web --tcp=80:8080", res("create", "", "services", "", "default", "")},
		{"create token deployer -n ci", res("create", "", "serviceaccounts", "token", "ci", "deployer")},
		{"create clusterrolebinding x --clusterrole=view --user=a", res("create", "rbac.authorization.k8s.io", "clusterrolebindings", "", "", "")},
		{"run web --image=nginx -n x", res("create", "", "pods", "", "x", "")},
		{"scale deployment web --replicas=3", res("patch", "apps", "deployments", "scale", "default", "web")},
		{"scale sts/db --replicas=0 -n prod", res("patch", "apps", "statefulsets", "scale", "prod", "db")},
		{"edit deploy web", res("patch", "apps", "deployments", "", "default", "web")},
		{"patch deploy web -p '{\"spec\":{\"replicas\":2}}'", res("patch", "apps", "deployments", "", "default", "web")},
		{"label pods web tier=frontend --overwrite", res("patch", "", "pods", "", "default", "web")},
		{"annotate pod/web a=b c-", res("patch", "", "pods", "", "default", "web")},
		{"rollout restart deploy/web -n x", res("patch", "apps", "deployments", "", "x", "web")},
		{"rollout status deployment web", res("get", "apps", "deployments", "", "default", "web")},
		{"cordon node-1", res("patch", "", "nodes", "", "", "node-1")},
		// discovery
		{"version", &policy.KubeRequest{Verb: "get", Path: "/version", Discovery: true}},
		{"api-resources", &policy.KubeRequest{Verb: "get", Path: "/apis", Discovery: true}},
	}
	for _, tc := range tests {
		t.Run(tc.cmd, func(t *testing.T) {
			got, err := ParseKubeCommand(tc.cmd)
			if err != nil {
				t.Fatalf("ParseKubeCommand: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseKubeCommandErrors(t *testing.T) {
	tests := []struct{ cmd, want string }{
		{"", "no command"},
		{"kubectl", "no command"},
		{"frobnicate pods", `unknown or unsupported kubectl command "frobnicate"`},
		{"get", `give a resource ("get pods")`},
		{"get widgets", `unknown resource "widgets"`},
		{"get deployments.batch", `deployments is in API group apps`},
		{"get pods.apps", `pods is in API group "" (core)`},
		{"get pods,svc", "one resource at a time"},
		{"get pods a b", "one object at a time"},
		{"get pod web -A", "cannot be named across all namespaces"},
		{"get pods --frobnicate", "unknown flag: --frobnicate"},
		{"--context prod get pods", "flag --context before the command"},
		{"get pod/", `"pod/" names no object`},
		{"delete pod web --all", "not both"},
		{"delete -f app.yaml", "-f/-k reads the objects from files"},
		{"create -f app.yaml", "-f/-k reads the objects from files"},
		{"apply -f app.yaml", "kubectl apply reads the objects from a file"},
		{"create widget x", "create widget: unknown or unsupported"},
		{"create secret db", "give the kind first (generic, docker-registry, tls)"},
		{"create deployment", "give one name"},
		{"logs", "give the pod's name"},
		{"logs deploy/web", "kubectl first picks a pod of the deployment"},
		{"exec svc/web -- ls", "kubectl first picks a pod of the service"},
		{"attach web other", "one pod"},
		{"scale deploy --replicas=3", "give the object's name"},
		{"scale pods web --replicas=3", "pods cannot be scaled"},
		{"rollout", "give a subcommand"},
		{"rollout frob deploy/web", "unknown subcommand"},
		{"get pod 'web", "unterminated single quote"},
		{"get pod web --subresource=exec", "--subresource=exec"},
		{"-n", "-n needs a value"},
	}
	for _, tc := range tests {
		t.Run(tc.cmd, func(t *testing.T) {
			got, err := ParseKubeCommand(tc.cmd)
			if err == nil {
				t.Fatalf("ParseKubeCommand = %+v, want an error containing %q", got, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"get  pods\t-n x", []string{"get", "pods", "-n", "x"}},
		{`exec web -- sh -c 'echo "a b"'`, []string{"exec", "web", "--", "sh", "-c", `echo "a b"`}},
		{`patch x -p "{\"a\": 1}"`, []string{"patch", "x", "-p", `{"a": 1}`}},
		{`a\ b ''`, []string{"a b", ""}},
	}
	for _, tc := range tests {
		got, err := splitWords(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseHTTPRequest(t *testing.T) {
	got, err := ParseHTTPRequest("GET /v1/invoices/7?x=1&x=2&y=", http.Header{"Content-Type": {"application/json"}})
	if err != nil {
		t.Fatal(err)
	}
	want := &policy.HTTPRequest{Method: "GET", Path: "/v1/invoices/7", Query: url.Values{"x": {"1", "2"}, "y": {""}},
		Header: http.Header{"Content-Type": {"application/json"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got, err := ParseHTTPRequest("  DELETE   /v1/a%20b  ", nil); err != nil || got.Path != "/v1/a b" || got.Method != "DELETE" {
		t.Errorf("decoded path: %+v %v", got, err)
	}
	if got, err := ParseHTTPRequest("GET /", nil); err != nil || got.Path != "/" {
		t.Errorf("root: %+v %v", got, err)
	}
	for in, msg := range map[string]string{
		"GET":                      `want "METHOD /path"`,
		"/v1/x":                    `want "METHOD /path"`,
		"get /v1/x":                "methods are case-sensitive; write GET",
		"G(T /v1/x":                "is not an HTTP method",
		"GET v1/x":                 "must start with '/'",
		"GET http://x/v1":          "must start with '/'",
		"GET /v1/../admin":         "'..' path segments are refused",
		"GET /v1/./x":              "'..' path segments are refused",
		"GET /v1//x":               "empty",
		"GET /v1/a%2Fb":            "encoded slash",
		"GET /v1/x#frag":           "fragment",
		"GET /v1/x y":              "has a space",
		"GET /v1/x?a=%zz":          "query",
		"POST /v1/x HTTP/1.1 junk": "has a space",
	} {
		if _, err := ParseHTTPRequest(in, nil); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseHTTPRequest(%q): error %v, want one containing %q", in, err, msg)
		}
	}
	for in, want := range map[string][2]string{
		"Content-Type: application/json": {"Content-Type", "application/json"},
		"x-tenant:acme ":                 {"x-tenant", "acme"},
		"X-Empty:":                       {"X-Empty", ""},
	} {
		n, v, err := ParseHeader(in)
		if err != nil || n != want[0] || v != want[1] {
			t.Errorf("ParseHeader(%q) = %q, %q, %v; want %q", in, n, v, err, want)
		}
	}
	for _, in := range []string{"no colon", ": v", "bad name: v"} {
		if _, _, err := ParseHeader(in); err == nil {
			t.Errorf("ParseHeader(%q) succeeded", in)
		}
	}
}
