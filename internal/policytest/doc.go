// Package policytest runs table-driven policy tests: each case names an
// identity, a target and a request, and the decision policy must reach
// for it, so that a policy change can be tested in CI before it ships
// (`warden policy test --config warden.yaml tests.yaml`).
//
// # File format
//
//	cases:
//	  - name: analysts read orders          # required, unique in the file
//	    identity:                           # required
//	      sub: agent-1                      # required: the token's "sub"
//	      issuer: https://idp.example.com   # optional: one of identity.oidc[].issuer; default the first
//	      claims: { groups: [analysts] }    # optional: the token's other claims, as its JSON would hold them
//	    target: prod-db                     # required: a configured target
//	    sql: SELECT * FROM orders           # the request: exactly one of sql, http, kube
//	    expect: allow                       # required: allow | review | deny
//	    rule: analyst-agents/allow[0]       # optional: the rule that must decide
//	    policy: analyst-agents              # optional: the policy that must decide
//	    reason_contains: "orders"           # optional: a substring of the decision's reason
//
// An http case names an http target and gives the request line, with
// optional headers (a value or a list of values per name):
//
//	http: "POST /v1/search?limit=10"    # METHOD /path?query, below /t/<target>
//	headers: { Content-Type: application/json }
//
// A kube case names a kubernetes target and gives a kubectl command, which
// ParseKubeCommand turns into the API request kubectl would make:
//
//	kube: "delete pod web-1 -n staging" # delete pods "web-1" in namespace "staging"
//	kube: "exec -it web-1 -- sh"        # create pods/exec "web-1" in namespace "default"
//
// A request that cannot be parsed, or a request on a target of another
// type, fails the case with a message saying why (never a pass).
//
// Decoding is strict: unknown keys, duplicate keys, YAML aliases and
// merge keys are errors, reported with file, line and key path like
// warden.yaml's (as *config.Error values).
//
// # Fidelity
//
// A case is decided the way the PostgreSQL proxy decides a live request:
// the identity becomes the Principal a verified token with those claims
// would produce (package identity: Subject from sub, Issuer from the
// chosen issuer, Groups from that issuer's groups_claim with the same
// rules, Claims the whole claim set including sub and iss, numbers as
// JSON numbers), the engine binds it, the subject must be able to connect
// to the target (Subject.CanConnect), and the SQL goes through the
// configured query-size limit, sqlfacts.Extract with the target's schema
// and Subject.DecideFacts. Each case is a fresh session: an EXECUTE of a
// statement not PREPAREd earlier in the same query string is refused, as
// the proxy refuses a name it has not seen. The registered claims a
// token's issuer adds (aud, exp, iat, nbf, jti) are not made up; write
// them under claims if a policy reads them. An http request goes through
// the checks the http proxy makes on a path before it asks policy (no
// dot or empty segments, no encoded slash) and Subject.DecideHTTP; a
// kube request through Subject.DecideKube, as the kube proxy decides the
// request kubectl sends (see ParseKubeCommand for where one kubectl
// command makes several requests).
//
// The package knows the test file format, configuration and policy
// decisions; it knows nothing about tokens, sockets or wire protocols,
// and it never touches a backend.
package policytest
