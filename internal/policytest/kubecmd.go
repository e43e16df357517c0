package policytest

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/warden-gateway/warden/internal/policy"
)

// This file turns the kubectl command a person would type into the one
// Kubernetes API request it stands for, as the API server (and warden's
// kube proxy, which parses requests the way the API server does) would
// see it: `get pods -n staging` is list pods in namespace "staging",
// `exec -it web -- sh` is create pods/exec "web", `scale deploy web
// --replicas=3` is patch deployments/scale.apps "web".
//
// It is a model of kubectl, not kubectl: it knows the common built-in
// resources (kubeResources) and the verbs below, and refuses anything
// else with a message saying so, rather than guess. Flags are parsed with
// pflag, the library kubectl itself uses, so "-n=x", "-nx", "-it" and
// "--" read as kubectl reads them. Where kubectl makes several requests
// for one command, the request returned is the one a policy is about:
// `edit` is the patch (not the get before it), `delete pods --all` is a
// deletecollection (kubectl itself lists the pods and deletes them one by
// one, so a live `kubectl delete --all` is decided as that list and one
// delete per pod), `create` is the create (whose name is in the body, so
// the request names none, as the API server sees it).

// kubeResource is one resource kubectl knows by several names.
type kubeResource struct {
	plural     string
	singular   string
	kind       string
	short      []string
	group      string // "" for the core group
	namespaced bool
}

// kubeResources are the built-in resources ParseKubeCommand knows: the
// ones agents and their operators name most.
var kubeResources = []kubeResource{
	{"pods", "pod", "Pod", []string{"po"}, "", true},
	{"services", "service", "Service", []string{"svc"}, "", true},
	{"endpoints", "endpoints", "Endpoints", []string{"ep"}, "", true},
	{"configmaps", "configmap", "ConfigMap", []string{"cm"}, "", true},
	{"secrets", "secret", "Secret", nil, "", true},
	{"serviceaccounts", "serviceaccount", "ServiceAccount", []string{"sa"}, "", true},
	{"persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", []string{"pvc"}, "", true},
	{"events", "event", "Event", []string{"ev"}, "", true},
	{"replicationcontrollers", "replicationcontroller", "ReplicationController", []string{"rc"}, "", true},
	{"resourcequotas", "resourcequota", "ResourceQuota", []string{"quota"}, "", true},
	{"limitranges", "limitrange", "LimitRange", []string{"limits"}, "", true},
	{"namespaces", "namespace", "Namespace", []string{"ns"}, "", false},
	{"nodes", "node", "Node", []string{"no"}, "", false},
	{"persistentvolumes", "persistentvolume", "PersistentVolume", []string{"pv"}, "", false},
	{"deployments", "deployment", "Deployment", []string{"deploy"}, "apps", true},
	{"replicasets", "replicaset", "ReplicaSet", []string{"rs"}, "apps", true},
	{"statefulsets", "statefulset", "StatefulSet", []string{"sts"}, "apps", true},
	{"daemonsets", "daemonset", "DaemonSet", []string{"ds"}, "apps", true},
	{"jobs", "job", "Job", nil, "batch", true},
	{"cronjobs", "cronjob", "CronJob", []string{"cj"}, "batch", true},
	{"ingresses", "ingress", "Ingress", []string{"ing"}, "networking.k8s.io", true},
	{"networkpolicies", "networkpolicy", "NetworkPolicy", []string{"netpol"}, "networking.k8s.io", true},
	{"roles", "role", "Role", nil, "rbac.authorization.k8s.io", true},
	{"rolebindings", "rolebinding", "RoleBinding", nil, "rbac.authorization.k8s.io", true},
	{"clusterroles", "clusterrole", "ClusterRole", nil, "rbac.authorization.k8s.io", false},
	{"clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", nil, "rbac.authorization.k8s.io", false},
	{"horizontalpodautoscalers", "horizontalpodautoscaler", "HorizontalPodAutoscaler", []string{"hpa"}, "autoscaling", true},
	{"poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", []string{"pdb"}, "policy", true},
	{"storageclasses", "storageclass", "StorageClass", []string{"sc"}, "storage.k8s.io", false},
	{"customresourcedefinitions", "customresourcedefinition", "CustomResourceDefinition", []string{"crd", "crds"}, "apiextensions.k8s.io", false},
	{"leases", "lease", "Lease", nil, "coordination.k8s.io", true},
}

// lookupKubeResource finds a resource by plural, singular, kind or short
// name, case-insensitively, optionally qualified by its group as kubectl
// allows: "deployments.apps", "deploy.apps", "deployments.v1.apps".
func lookupKubeResource(name string) (*kubeResource, error) {
	n := strings.ToLower(name)
	base, group, qualified := strings.Cut(n, ".")
	for i := range kubeResources {
		r := &kubeResources[i]
		if !r.knownAs(base) {
			continue
		}
		if !qualified {
			return r, nil
		}
		// "deployments.v1.apps": a version before the group.
		if v, g, ok := strings.Cut(group, "."); ok && strings.HasPrefix(v, "v") && g == r.group {
			return r, nil
		}
		if group == r.group || (r.group == "" && (group == "v1" || group == "core")) {
			return r, nil
		}
		return nil, fmt.Errorf("unknown resource %q: %s is in API group %s", name, r.plural, groupName(r.group))
	}
	return nil, fmt.Errorf("unknown resource %q (warden knows the built-in resources %s; custom resources are not modelled)", name, knownResourceNames())
}

func (r *kubeResource) knownAs(n string) bool {
	if n == r.plural || n == r.singular || n == strings.ToLower(r.kind) {
		return true
	}
	for _, s := range r.short {
		if n == s {
			return true
		}
	}
	return false
}

func groupName(g string) string {
	if g == "" {
		return `"" (core)`
	}
	return g
}

func knownResourceNames() string {
	names := make([]string, 0, len(kubeResources))
	for _, r := range kubeResources {
		names = append(names, r.plural)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// kubeCommandVerbs are the kubectl commands ParseKubeCommand understands.
var kubeCommandVerbs = []string{
	"annotate", "api-resources", "api-versions", "attach", "cordon", "create", "delete", "describe", "edit",
	"exec", "get", "label", "logs", "patch", "port-forward", "rollout", "run", "scale", "uncordon", "version",
}

// kubeFlags is a flag set with kubectl's flags for one command. Flags
// that do not change the request (output format, selectors) are parsed
// and ignored; flags that would need what warden does not have (a file of
// objects) are parsed so they can be refused by name.
type kubeFlags struct {
	fs            *pflag.FlagSet
	namespace     string
	allNamespaces bool
	watch         bool
	watchOnly     bool
	all           bool
	filename      []string
	subresource   string
}

func newKubeFlags(verb string) *kubeFlags {
	f := &kubeFlags{fs: pflag.NewFlagSet("kubectl "+verb, pflag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(discard{})
	fs.SetInterspersed(true)
	fs.StringVarP(&f.namespace, "namespace", "n", "", "")
	fs.StringP("output", "o", "", "")
	fs.StringP("selector", "l", "", "")
	fs.String("field-selector", "", "")
	fs.String("dry-run", "none", "")
	fs.Lookup("dry-run").NoOptDefVal = "unchanged"
	fs.String("field-manager", "", "")
	fs.String("request-timeout", "", "")
	fs.Bool("show-managed-fields", false, "")
	fs.StringVar(&f.subresource, "subresource", "", "")
	switch verb {
	case "logs":
		fs.BoolP("follow", "f", false, "")
		fs.BoolP("previous", "p", false, "")
		fs.StringP("container", "c", "", "")
		fs.Bool("all-containers", false, "")
		fs.Bool("timestamps", false, "")
		fs.String("tail", "", "")
		fs.String("since", "", "")
		fs.String("since-time", "", "")
		fs.String("limit-bytes", "", "")
		fs.Bool("prefix", false, "")
	default:
		fs.StringSliceVarP(&f.filename, "filename", "f", nil, "")
		fs.StringP("kustomize", "k", "", "")
		fs.BoolP("recursive", "R", false, "")
	}
	switch verb {
	case "get", "describe", "delete", "label", "annotate":
		fs.BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "")
	}
	switch verb {
	case "get":
		fs.BoolVarP(&f.watch, "watch", "w", false, "")
		fs.BoolVar(&f.watchOnly, "watch-only", false, "")
		fs.Bool("no-headers", false, "")
		fs.Bool("show-labels", false, "")
		fs.Bool("show-kind", false, "")
		fs.Bool("ignore-not-found", false, "")
		fs.StringSliceP("label-columns", "L", nil, "")
		fs.String("sort-by", "", "")
		fs.String("chunk-size", "", "")
		fs.String("template", "", "")
	case "describe":
		fs.Bool("show-events", true, "")
		fs.String("chunk-size", "", "")
	case "delete":
		fs.BoolVar(&f.all, "all", false, "")
		fs.Bool("force", false, "")
		fs.Bool("now", false, "")
		fs.Bool("wait", true, "")
		fs.Bool("ignore-not-found", false, "")
		fs.String("grace-period", "", "")
		fs.String("timeout", "", "")
		fs.String("cascade", "", "")
		fs.Lookup("cascade").NoOptDefVal = "background"
	case "exec", "attach", "run":
		fs.BoolP("stdin", "i", false, "")
		fs.BoolP("tty", "t", false, "")
		fs.BoolP("quiet", "q", false, "")
		fs.StringP("container", "c", "", "")
		fs.String("pod-running-timeout", "", "")
		if verb == "run" {
			fs.String("image", "", "")
			fs.StringArray("env", nil, "")
			fs.String("port", "", "")
			fs.StringArray("labels", nil, "")
			fs.String("restart", "", "")
			fs.Bool("rm", false, "")
			fs.String("command", "", "")
			fs.Lookup("command").NoOptDefVal = "true"
		}
	case "port-forward":
		fs.StringSlice("address", nil, "")
		fs.String("pod-running-timeout", "", "")
	case "scale":
		fs.String("replicas", "", "")
		fs.String("current-replicas", "", "")
		fs.String("resource-version", "", "")
		fs.String("timeout", "", "")
		fs.BoolVar(&f.all, "all", false, "")
	case "patch":
		fs.StringP("patch", "p", "", "")
		fs.String("patch-file", "", "")
		fs.String("type", "", "")
	case "label", "annotate":
		fs.Bool("overwrite", false, "")
		fs.BoolVar(&f.all, "all", false, "")
		fs.Bool("list", false, "")
		fs.String("resource-version", "", "")
	case "create":
		fs.String("image", "", "")
		fs.String("replicas", "", "")
		fs.String("port", "", "")
		fs.StringArray("from-literal", nil, "")
		fs.StringSlice("from-file", nil, "")
		fs.StringSlice("from-env-file", nil, "")
		fs.String("type", "", "")
		fs.String("schedule", "", "")
		fs.String("from", "", "")
		fs.String("role", "", "")
		fs.String("clusterrole", "", "")
		fs.StringArray("user", nil, "")
		fs.StringArray("group", nil, "")
		fs.StringArray("serviceaccount", nil, "")
		fs.StringArray("verb", nil, "")
		fs.StringArray("resource", nil, "")
		fs.StringArray("rule", nil, "")
		fs.StringSlice("tcp", nil, "")
		fs.String("duration", "", "")
		fs.StringArray("audience", nil, "")
		fs.Bool("save-config", false, "")
		fs.Bool("edit", false, "")
		fs.String("class", "", "")
	case "edit":
		fs.Bool("windows-line-endings", false, "")
		fs.Bool("save-config", false, "")
	case "cordon", "uncordon":
	}
	return f
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// ParseKubeCommand parses a kubectl command line ("get pods -n staging",
// "kubectl exec -it web -- sh") into the Kubernetes API request it makes,
// as policy decides it. Namespaced resources default to namespace
// "default", as kubectl does without a kubeconfig namespace; -A
// (--all-namespaces) and cluster-scoped resources have namespace "".
// A command warden does not model is an error that says what it does
// understand.
func ParseKubeCommand(s string) (*policy.KubeRequest, error) {
	words, err := splitWords(s)
	if err != nil {
		return nil, fmt.Errorf("kube command %q: %w", s, err)
	}
	if len(words) > 0 && (words[0] == "kubectl" || strings.HasSuffix(words[0], "/kubectl")) {
		words = words[1:]
	}
	// kubectl takes flags before the command too: "kubectl -n staging
	// get pods". The namespace is the one such flag with a meaning here;
	// the others pick a cluster or a user, which are the target and the
	// identity.
	var lead []string
	for len(words) > 0 && strings.HasPrefix(words[0], "-") {
		w := words[0]
		switch {
		case w == "-n" || w == "--namespace":
			if len(words) < 2 {
				return nil, fmt.Errorf("kube command %q: %s needs a value", s, w)
			}
			lead, words = append(lead, w, words[1]), words[2:]
		case strings.HasPrefix(w, "--namespace=") || (strings.HasPrefix(w, "-n") && !strings.HasPrefix(w, "--")):
			lead, words = append(lead, w), words[1:]
		default:
			return nil, fmt.Errorf("kube command %q: flag %s before the command: warden understands only -n there (the cluster is the target, the user the identity)", s, w)
		}
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("kube command %q: no command; write a kubectl command such as \"get pods -n staging\"", s)
	}
	verb := words[0]
	r, err := parseKubeVerb(verb, append(lead, words[1:]...))
	if err != nil {
		return nil, fmt.Errorf("kube command %q: %w", s, err)
	}
	return r, nil
}

func parseKubeVerb(verb string, args []string) (*policy.KubeRequest, error) {
	switch verb {
	case "version":
		return &policy.KubeRequest{Verb: "get", Path: "/version", Discovery: true}, nil
	case "api-resources", "api-versions":
		return &policy.KubeRequest{Verb: "get", Path: "/apis", Discovery: true}, nil
	case "apply", "replace":
		return nil, fmt.Errorf("kubectl %s reads the objects from a file (-f), which warden cannot see; write the request it makes instead: \"create deployment web\", \"patch deployment web\"", verb)
	case "rollout":
		if len(args) == 0 {
			return nil, errors.New("rollout: give a subcommand (restart, pause, resume, status, history)")
		}
		sub := args[0]
		switch sub {
		case "restart", "pause", "resume", "undo":
			// All of them patch the workload (undo patches it back to
			// an older template).
			return parseKubeResourceVerb("rollout "+sub, "patch", args[1:], requireName)
		case "status", "history":
			return parseKubeResourceVerb("rollout "+sub, "get", args[1:], requireName)
		}
		return nil, fmt.Errorf("rollout %s: unknown subcommand (want restart, pause, resume, undo, status or history)", sub)
	}
	if !slices.Contains(kubeCommandVerbs, verb) {
		return nil, fmt.Errorf("unknown or unsupported kubectl command %q (warden understands %s)", verb, strings.Join(kubeCommandVerbs, ", "))
	}
	switch verb {
	case "get":
		return parseKubeResourceVerb(verb, "get", args, listOrGet)
	case "describe":
		return parseKubeResourceVerb(verb, "get", args, listOrGet)
	case "delete":
		return parseKubeResourceVerb(verb, "delete", args, deleteOrCollection)
	case "edit", "patch":
		return parseKubeResourceVerb(verb, "patch", args, requireName)
	case "label", "annotate":
		// The arguments after the object are key=value pairs and "key-".
		return parseKubeResourceVerb(verb, "patch", args, requireNameThenPairs)
	case "scale":
		r, err := parseKubeResourceVerb(verb, "patch", args, requireName)
		if err != nil {
			return nil, err
		}
		switch r.Resource {
		case "deployments", "replicasets", "statefulsets", "replicationcontrollers":
			r.Subresource = "scale"
			return r, nil
		}
		return nil, fmt.Errorf("scale: %s cannot be scaled (deployments, replicasets, statefulsets, replicationcontrollers)", r.Resource)
	case "cordon", "uncordon":
		r, err := parseKubeResourceVerb(verb, "patch", append([]string{"nodes"}, args...), requireName)
		if err != nil {
			return nil, err
		}
		return r, nil
	case "logs":
		return parsePodVerb(verb, "get", "log", args, false)
	case "exec":
		return parsePodVerb(verb, "create", "exec", args, true)
	case "attach":
		return parsePodVerb(verb, "create", "attach", args, false)
	case "port-forward":
		return parsePodVerb(verb, "create", "portforward", args, true)
	case "run":
		f := newKubeFlags(verb)
		pos, err := f.parse(args)
		if err != nil {
			return nil, err
		}
		if len(pos) == 0 {
			return nil, errors.New("run: give the pod's name")
		}
		return &policy.KubeRequest{IsResourceRequest: true, Verb: "create", Resource: "pods", Namespace: f.ns(true)}, nil
	case "create":
		return parseCreate(args)
	}
	return nil, fmt.Errorf("unsupported kubectl command %q", verb)
}

// parse parses args and returns the positional arguments before "--".
// -f and -k are refused: warden decides a request it can see.
func (f *kubeFlags) parse(args []string) ([]string, error) {
	if err := f.fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%s: %w", f.fs.Name(), err)
	}
	if len(f.filename) > 0 || (f.fs.Lookup("kustomize") != nil && f.fs.Lookup("kustomize").Changed) {
		return nil, fmt.Errorf("%s: -f/-k reads the objects from files, which warden cannot see; name the resource instead (\"delete pod web\")", f.fs.Name())
	}
	pos := f.fs.Args()
	if dash := f.fs.ArgsLenAtDash(); dash >= 0 {
		pos = pos[:dash]
	}
	return pos, nil
}

// ns is the request's namespace for a namespaced resource.
func (f *kubeFlags) ns(namespaced bool) string {
	switch {
	case !namespaced, f.allNamespaces:
		return ""
	case f.namespace != "":
		return f.namespace
	}
	return "default"
}

// nameRule says what a command does with the names it is given.
type nameRule int

const (
	listOrGet            nameRule = iota // no name: list (or watch); a name: get (or watch of it)
	deleteOrCollection                   // a name: delete; --all or -l: deletecollection
	requireName                          // exactly one name
	requireNameThenPairs                 // one name, then key=value arguments
)

// parseKubeResourceVerb parses "<resource> [name]" or "<resource>/<name>".
func parseKubeResourceVerb(cmd, verb string, args []string, rule nameRule) (*policy.KubeRequest, error) {
	f := newKubeFlags(strings.Fields(cmd)[0])
	pos, err := f.parse(args)
	if err != nil {
		return nil, err
	}
	if len(pos) == 0 {
		return nil, fmt.Errorf("%s: give a resource (\"%s pods\")", cmd, cmd)
	}
	var res, name string
	var names []string
	if r, n, ok := strings.Cut(pos[0], "/"); ok {
		res, name = r, n
		if name == "" {
			return nil, fmt.Errorf("%s: %q names no object", cmd, pos[0])
		}
		names = []string{name}
		if len(pos) > 1 && rule != requireNameThenPairs {
			return nil, fmt.Errorf("%s: one object at a time (warden decides one request; got %s)", cmd, strings.Join(pos, " "))
		}
	} else {
		res = pos[0]
		names = pos[1:]
		if rule == requireNameThenPairs && len(names) > 0 {
			names = names[:1]
		}
		if len(names) > 1 {
			return nil, fmt.Errorf("%s: one object at a time (warden decides one request; got %s)", cmd, strings.Join(names, " "))
		}
		if len(names) == 1 {
			name = names[0]
		}
	}
	if strings.Contains(res, ",") {
		return nil, fmt.Errorf("%s: one resource at a time (got %q)", cmd, res)
	}
	rd, err := lookupKubeResource(res)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	r := &policy.KubeRequest{
		IsResourceRequest: true,
		Verb:              verb,
		APIGroup:          rd.group,
		Resource:          rd.plural,
		Name:              name,
		Namespace:         f.ns(rd.namespaced),
		Subresource:       f.subresource,
	}
	if f.subresource != "" && f.subresource != "status" && f.subresource != "scale" {
		return nil, fmt.Errorf("%s: --subresource=%s: kubectl supports status and scale", cmd, f.subresource)
	}
	if f.allNamespaces && name != "" {
		return nil, fmt.Errorf("%s: a resource cannot be named across all namespaces (-A with %q)", cmd, name)
	}
	selector := f.fs.Lookup("selector").Changed || f.fs.Lookup("field-selector").Changed
	switch rule {
	case listOrGet:
		if name == "" {
			r.Verb = "list"
		}
		if f.watch || f.watchOnly {
			r.Verb = "watch"
		}
	case deleteOrCollection:
		switch {
		case name != "" && (f.all || selector):
			return nil, fmt.Errorf("%s: give a name or --all/-l, not both", cmd)
		case name == "" && (f.all || selector):
			r.Verb = "deletecollection"
		case name == "":
			// "delete pods -n staging" (DESIGN's example): may this
			// identity delete pods there at all? Decided as a delete of
			// an unnamed pod, which a rule with names never matches.
			r.Verb = "delete"
		}
	case requireName, requireNameThenPairs:
		if name == "" {
			return nil, fmt.Errorf("%s: give the object's name (\"%s %s NAME\")", cmd, cmd, rd.singular)
		}
	}
	return r, nil
}

// parsePodVerb parses the pod commands: logs, exec, attach, port-forward.
// They name a pod ("web" or "pod/web"); kubectl resolves other workloads
// (deploy/web) to one of their pods first, which warden cannot do without
// the cluster, so those are refused.
func parsePodVerb(cmd, verb, sub string, args []string, extraArgs bool) (*policy.KubeRequest, error) {
	f := newKubeFlags(cmd)
	pos, err := f.parse(args)
	if err != nil {
		return nil, err
	}
	if len(pos) == 0 {
		return nil, fmt.Errorf("%s: give the pod's name", cmd)
	}
	name := pos[0]
	if r, n, ok := strings.Cut(name, "/"); ok {
		rd, err := lookupKubeResource(r)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cmd, err)
		}
		if rd.plural != "pods" {
			return nil, fmt.Errorf("%s: %s: kubectl first picks a pod of the %s; name the pod (\"%s POD\")", cmd, name, rd.singular, cmd)
		}
		name = n
	}
	if name == "" {
		return nil, fmt.Errorf("%s: give the pod's name", cmd)
	}
	// logs POD [CONTAINER]; exec POD [COMMAND...] (the old form, without
	// "--"); port-forward POD PORT...; attach POD.
	maxArgs := 1
	switch {
	case cmd == "logs":
		maxArgs = 2
	case extraArgs:
		maxArgs = len(pos)
	}
	if len(pos) > maxArgs {
		return nil, fmt.Errorf("%s: one pod (got %s)", cmd, strings.Join(pos, " "))
	}
	return &policy.KubeRequest{
		IsResourceRequest: true,
		Verb:              verb,
		Resource:          "pods",
		Subresource:       sub,
		Name:              name,
		Namespace:         f.ns(true),
	}, nil
}

// createForms maps `kubectl create <form>` to the resource it creates.
// Some forms take a kind of object before the name (secret generic,
// service clusterip).
var createForms = map[string]struct {
	resource string
	subtypes []string
}{
	"deployment":          {resource: "deployments"},
	"deploy":              {resource: "deployments"},
	"job":                 {resource: "jobs"},
	"cronjob":             {resource: "cronjobs"},
	"cj":                  {resource: "cronjobs"},
	"configmap":           {resource: "configmaps"},
	"cm":                  {resource: "configmaps"},
	"secret":              {resource: "secrets", subtypes: []string{"generic", "docker-registry", "tls"}},
	"service":             {resource: "services", subtypes: []string{"clusterip", "nodeport", "loadbalancer", "externalname"}},
	"svc":                 {resource: "services", subtypes: []string{"clusterip", "nodeport", "loadbalancer", "externalname"}},
	"namespace":           {resource: "namespaces"},
	"ns":                  {resource: "namespaces"},
	"serviceaccount":      {resource: "serviceaccounts"},
	"sa":                  {resource: "serviceaccounts"},
	"role":                {resource: "roles"},
	"rolebinding":         {resource: "rolebindings"},
	"clusterrole":         {resource: "clusterroles"},
	"clusterrolebinding":  {resource: "clusterrolebindings"},
	"ingress":             {resource: "ingresses"},
	"ing":                 {resource: "ingresses"},
	"poddisruptionbudget": {resource: "poddisruptionbudgets"},
	"pdb":                 {resource: "poddisruptionbudgets"},
	"quota":               {resource: "resourcequotas"},
	"resourcequota":       {resource: "resourcequotas"},
}

// parseCreate parses `create <form> NAME` and `create token SA`.
func parseCreate(args []string) (*policy.KubeRequest, error) {
	f := newKubeFlags("create")
	pos, err := f.parse(args)
	if err != nil {
		return nil, err
	}
	if len(pos) == 0 {
		return nil, errors.New(`create: give what to create ("create deployment web --image=nginx"); -f is not supported`)
	}
	if pos[0] == "token" {
		// kubectl create token SA: the serviceaccounts/token subresource.
		if len(pos) != 2 {
			return nil, errors.New("create token: give the service account's name")
		}
		return &policy.KubeRequest{IsResourceRequest: true, Verb: "create", Resource: "serviceaccounts", Subresource: "token", Name: pos[1], Namespace: f.ns(true)}, nil
	}
	form, ok := createForms[strings.ToLower(pos[0])]
	if !ok {
		forms := make([]string, 0, len(createForms))
		for k := range createForms {
			forms = append(forms, k)
		}
		sort.Strings(forms)
		return nil, fmt.Errorf("create %s: unknown or unsupported (warden understands create %s, token)", pos[0], strings.Join(forms, ", "))
	}
	rest := pos[1:]
	if len(form.subtypes) > 0 {
		if len(rest) == 0 || !slices.Contains(form.subtypes, rest[0]) {
			return nil, fmt.Errorf("create %s: give the kind first (%s) then the name", pos[0], strings.Join(form.subtypes, ", "))
		}
		rest = rest[1:]
	}
	if len(rest) != 1 {
		return nil, fmt.Errorf("create %s: give one name", pos[0])
	}
	rd, err := lookupKubeResource(form.resource)
	if err != nil {
		return nil, err
	}
	// The name is in the body of a create, not in its path: the API
	// server (and so policy's names) sees none.
	return &policy.KubeRequest{IsResourceRequest: true, Verb: "create", APIGroup: rd.group, Resource: rd.plural, Namespace: f.ns(rd.namespaced)}, nil
}

// splitWords splits a command line into words as a POSIX shell would for
// the simple cases people type: whitespace separates, single quotes keep
// everything, double quotes keep everything but \" and \\, a backslash
// outside quotes escapes the next character. Variables, globs and
// command substitution are not expanded.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated double quote")
			}
			inWord = true
		case c == '\\':
			if i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			}
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
