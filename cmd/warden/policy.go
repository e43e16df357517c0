package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/policy"
	"github.com/warden-gateway/warden/internal/policytest"
	"github.com/warden-gateway/warden/internal/sqlfacts"
)

func policyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Check, explain and test policy without touching any backend"}
	var path string
	cmd.PersistentFlags().StringVarP(&path, "config", "c", "warden.yaml", "configuration file")

	check := &cobra.Command{
		Use:   "check",
		Short: "Validate the configuration and compile the policy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			if _, err := policy.Compile(cfg); err != nil {
				return err
			}
			// What serve would refuse at start, check refuses too.
			if _, err := gateway.StorePath(cfg); err != nil {
				return err
			}
			if cfg.TLS != nil {
				if _, err := tls.LoadX509KeyPair(cfg.Resolve(cfg.TLS.Cert), cfg.Resolve(cfg.TLS.Key)); err != nil {
					return fmt.Errorf("tls: %w", err)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %s: %s, %s\n", path, plural(len(cfg.Targets), "target"), plural(len(cfg.Policies), "policy"))
			return nil
		},
	}

	var token, sub, issuerFlag, target, sql, httpReq, kubeCmd string
	var claims, headers []string
	explain := &cobra.Command{
		Use:   "explain --target T (--sql SQL | --http \"GET /path\" [--header 'Name: value']... | --kube \"get pods -n ns\") (--token T | --sub S [--claim k=v]...)",
		Short: "Print the decision for a request, the rule that made it and what the request was understood as; never contacts a backend",
		Long: `Print the decision policy reaches for one request, the rule that made it, and
what warden understood the request to be, without touching any backend.

  --sql     a query string for a postgres target (the statement facts are printed)
  --http    "METHOD /path?query" for an http target (the path below /t/<target>),
            with --header 'Name: value' as often as needed
  --kube    a kubectl command for a kubernetes target ("delete pod web -n staging",
            "exec -it web -- sh"); the API request it makes is printed

Exit status: 0 allowed, 2 denied, 3 held for review, 1 for a usage error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			eng, err := policy.Compile(cfg)
			if err != nil {
				return err
			}
			// Check the request flags before verifying a token: a usage
			// mistake should not cost a round trip to the issuer.
			kind, err := explainKind(sql, httpReq, kubeCmd, headers)
			if err != nil {
				return err
			}
			var t *config.Target
			for i := range cfg.Targets {
				if cfg.Targets[i].Name == target {
					t = &cfg.Targets[i]
				}
			}
			if t == nil {
				return fmt.Errorf("explain: unknown target %q", target)
			}
			if want := explainTargetType[kind]; t.Type != want {
				return fmt.Errorf("explain: target %q is %s %s target; --%s needs %s %s target", target, article(t.Type), t.Type, kind, article(want), want)
			}
			// Parse the request before the identity, for the same reason.
			var hreq *policy.HTTPRequest
			var kreq *policy.KubeRequest
			switch kind {
			case "http":
				h := http.Header{}
				for _, line := range headers {
					name, value, err := policytest.ParseHeader(line)
					if err != nil {
						return fmt.Errorf("explain: --header: %w", err)
					}
					h.Add(name, value)
				}
				if hreq, err = policytest.ParseHTTPRequest(httpReq, h); err != nil {
					return fmt.Errorf("explain: --http: %w", err)
				}
			case "kube":
				if kreq, err = policytest.ParseKubeCommand(kubeCmd); err != nil {
					return fmt.Errorf("explain: --kube: %w", err)
				}
			}
			var p *identity.Principal
			switch {
			case token != "":
				v, err := identity.NewOIDC(cmd.Context(), cfg.Identity.OIDC, identity.Options{})
				if err != nil {
					return err
				}
				if p, err = v.Verify(cmd.Context(), token); err != nil {
					return fmt.Errorf("explain: token: %w", err)
				}
			case sub != "":
				cl, err := identity.ParseClaimFlags(claims)
				if err != nil {
					return err
				}
				if p, err = principalFromClaims(cfg, sub, issuerFlag, cl); err != nil {
					return err
				}
			default:
				return errors.New("explain: give --token, or --sub with --claim for an identity")
			}
			s := eng.Bind(p)
			switch kind {
			case "http":
				return explainHTTP(cmd.OutOrStdout(), s, target, hreq)
			case "kube":
				return explainKube(cmd.OutOrStdout(), s, target, kreq)
			}
			return explainSQL(cmd.OutOrStdout(), s, target, t.Schema, sql)
		},
	}
	explain.Flags().StringVar(&token, "token", "", "an access token to verify against the configured issuers")
	explain.Flags().StringVar(&sub, "sub", "", "explain for this subject without a token")
	explain.Flags().StringVar(&issuerFlag, "issuer", "", "with --sub: the issuer the identity comes from (default: the first configured)")
	explain.MarkFlagsMutuallyExclusive("token", "sub")
	explain.MarkFlagRequired("target")
	explain.Flags().StringArrayVar(&claims, "claim", nil, "claim key=value for --sub (groups=analysts)")
	explain.Flags().StringVar(&target, "target", "", "target name")
	explain.Flags().StringVar(&sql, "sql", "", "SQL text (postgres targets)")
	explain.Flags().StringVar(&httpReq, "http", "", `request line "METHOD /path?query" (http targets)`)
	explain.Flags().StringArrayVar(&headers, "header", nil, `with --http: a request header "Name: value" (repeatable)`)
	explain.Flags().StringVar(&kubeCmd, "kube", "", `kubectl command "get pods -n staging" (kubernetes targets)`)
	explain.MarkFlagsMutuallyExclusive("sql", "http", "kube")
	explain.MarkFlagsOneRequired("sql", "http", "kube")

	var verbose bool
	test := &cobra.Command{
		Use:   "test [--verbose] TESTS.yaml",
		Short: "Run table-driven policy tests (identity + request → expected decision); exit 1 if any fails, 2 if the files are invalid",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &exitError{code: 2, msg: "policy test: give one test file: warden policy test --config warden.yaml tests.yaml"}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPolicyTests(cmd.OutOrStdout(), path, args[0], verbose)
		},
	}
	test.Flags().BoolVarP(&verbose, "verbose", "v", false, "print every case's decision, rule, reason and matching policies")
	// Exit status 1 means "a policy test failed"; a usage mistake is not one.
	test.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: 2, msg: "policy test: " + err.Error()}
	})
	cmd.AddCommand(check, explain, test)
	return cmd
}

// runPolicyTests is `warden policy test`: one line per case, then the
// summary "N passed, M failed". Exit status 0 when every case passes, 1
// when any fails, 2 when the configuration or the test file is invalid.
func runPolicyTests(w io.Writer, cfgPath, testsPath string, verbose bool) error {
	invalid := func(err error) error { return &exitError{code: 2, msg: err.Error()} }
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return invalid(err)
	}
	eng, err := policy.Compile(cfg)
	if err != nil {
		return invalid(err)
	}
	suite, err := policytest.Load(testsPath)
	if err != nil {
		return invalid(err)
	}
	if err := suite.Validate(cfg); err != nil {
		return invalid(err)
	}
	results := suite.Run(eng, cfg)
	failed := 0
	for _, r := range results {
		if r.Passed {
			fmt.Fprintln(w, oneLine("PASS "+r.Case.Name))
		} else {
			failed++
			fmt.Fprintln(w, oneLine("FAIL "+r.Case.Name+": "+r.Message))
		}
		if verbose {
			if r.Request != "" {
				fmt.Fprintln(w, oneLine("    request:  "+r.Request))
			}
			if r.Decided() {
				d := r.Got
				fmt.Fprintln(w, oneLine(fmt.Sprintf("    decision: %s by %s (policy %s)", d.Effect, d.Rule, orDash(d.Policy))))
				fmt.Fprintln(w, oneLine("    reason:   "+d.Reason))
			}
			fmt.Fprintln(w, oneLine("    policies: "+orDash(strings.Join(r.Policies, ", "))))
			for _, n := range r.Notes {
				fmt.Fprintln(w, oneLine("    note:     "+n))
			}
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", len(results)-failed, failed)
	if failed > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%d of %d policy tests failed", failed, len(results))}
	}
	return nil
}

// oneLine replaces control characters: case names and reasons (which can
// quote identifiers from the SQL) must not break the one-line-per-case
// output that CI logs and scripts read.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
}

// principalFromClaims builds the identity `explain --sub` speaks for,
// the way `policy test` does: the groups claim of the chosen issuer (a
// list, as a real token carries it) and iss/sub in the claims.
func principalFromClaims(cfg *config.Config, sub, issuer string, claims map[string]any) (*identity.Principal, error) {
	groupsClaim := config.DefaultGroupsClaim
	for _, o := range cfg.Identity.OIDC {
		if issuer == "" || o.Issuer == issuer {
			if o.GroupsClaim != "" {
				groupsClaim = o.GroupsClaim
			}
			break
		}
	}
	for k, v := range claims {
		switch v := v.(type) {
		case []string:
			l := make([]any, len(v))
			for i, x := range v {
				l[i] = x
			}
			claims[k] = l
		case string:
			if k == groupsClaim {
				claims[k] = []any{v}
			}
		}
	}
	c := policytest.Case{Identity: policytest.Identity{Sub: sub, Issuer: issuer, Claims: claims}}
	return c.Principal(cfg)
}

// explainTargetType is the target type each request flag needs.
var explainTargetType = map[string]string{"sql": "postgres", "http": "http", "kube": "kubernetes"}

// explainKind names the one request flag given.
func explainKind(sql, httpReq, kubeCmd string, headers []string) (string, error) {
	var kinds []string
	for _, k := range []struct{ name, v string }{{"sql", sql}, {"http", httpReq}, {"kube", kubeCmd}} {
		if strings.TrimSpace(k.v) != "" {
			kinds = append(kinds, k.name)
		}
	}
	if len(kinds) != 1 {
		return "", errors.New("explain: give exactly one non-empty request: --sql, --http or --kube")
	}
	if len(headers) > 0 && kinds[0] != "http" {
		return "", errors.New("explain: --header goes with --http")
	}
	return kinds[0], nil
}

// explainHTTP prints the decision for one request to an http target.
func explainHTTP(w io.Writer, s *policy.Subject, target string, r *policy.HTTPRequest) error {
	fmt.Fprintf(w, "subject:  %s\npolicies: %s\n", s.Principal().Subject, strings.Join(s.Policies(), ", "))
	fmt.Fprintln(w, oneLine("request:  "+r.Method+" "+r.Path))
	if len(r.Query) > 0 {
		fmt.Fprintln(w, oneLine("  query:  "+r.Query.Encode()))
	}
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range r.Header[k] {
			fmt.Fprintln(w, oneLine("  header: "+k+": "+v))
		}
	}
	return explainDecision(w, s.DecideHTTP(target, r), "HTTP 403")
}

// explainKube prints the API request a kubectl command makes and the
// decision for it, and what happens to Secret values in the answer.
func explainKube(w io.Writer, s *policy.Subject, target string, r *policy.KubeRequest) error {
	fmt.Fprintf(w, "subject:  %s\npolicies: %s\n", s.Principal().Subject, strings.Join(s.Policies(), ", "))
	fmt.Fprintln(w, oneLine("request:  "+policy.DescribeKube(r)))
	if r.IsResourceRequest {
		group := r.APIGroup
		if group == "" {
			group = `"" (core)`
		}
		ns := r.Namespace
		if ns == "" {
			ns = "- (cluster-scoped or all namespaces)"
		}
		for _, kv := range [][2]string{
			{"verb", r.Verb}, {"group", group}, {"resource", r.Resource}, {"subresource", orDash(r.Subresource)},
			{"namespace", ns}, {"name", orDash(r.Name)},
		} {
			fmt.Fprintln(w, oneLine(fmt.Sprintf("  %-12s %s", kv[0]+":", kv[1])))
		}
	} else {
		fmt.Fprintln(w, oneLine(fmt.Sprintf("  %-12s %s", "path:", r.Path)))
	}
	d := s.DecideKube(target, r)
	var extra []string
	if r.IsResourceRequest && r.Resource == "secrets" && r.Subresource == "" && d.Effect != policy.Deny {
		if d.Reveal {
			extra = append(extra, "secrets:  values revealed (an allow rule for this request sets reveal_secret_data)")
		} else {
			extra = append(extra, "secrets:  values masked (data and stringData; no allow rule for this request sets reveal_secret_data)")
		}
	}
	return explainDecision(w, d, "HTTP 403 with a Kubernetes Status", extra...)
}

// explainDecision prints a request decision and sets the exit status:
// 0 allow, 2 deny, 3 review.
func explainDecision(w io.Writer, d policy.Decision, refusal string, extra ...string) error {
	fmt.Fprintln(w, oneLine(fmt.Sprintf("decision: %s", d.Effect)))
	fmt.Fprintln(w, oneLine("policy:   "+orDash(d.Policy)))
	fmt.Fprintln(w, oneLine("rule:     "+d.Rule))
	fmt.Fprintln(w, oneLine("reason:   "+d.Reason))
	for _, l := range extra {
		fmt.Fprintln(w, oneLine(l))
	}
	switch d.Effect {
	case policy.Review:
		approvers := d.Approvers
		if approvers == "" {
			approvers = "admins"
		}
		fmt.Fprintln(w, oneLine(fmt.Sprintf("approvals: %d from %s", max(d.MinApprovals, 1), approvers)))
		fmt.Fprintln(w, oneLine("client sees: the request is held until approved, or "+refusal+": "+d.Message()))
		return &exitError{code: 3, msg: "held for review"}
	case policy.Deny:
		fmt.Fprintln(w, oneLine("client sees: "+refusal+": "+d.Message()))
		return &exitError{code: 2, msg: "denied"}
	}
	return nil
}

func explainSQL(w io.Writer, s *policy.Subject, target, schema, sql string) error {
	fmt.Fprintf(w, "subject:  %s\npolicies: %s\n", s.Principal().Subject, strings.Join(s.Policies(), ", "))
	if d := s.CanConnect(target); d.Effect != policy.Allow {
		fmt.Fprintf(w, "connect:  deny (%s)\n", d.Reason)
	}
	facts, err := sqlfacts.Extract(sql, sqlfacts.Options{Schema: schema})
	if err != nil {
		fmt.Fprintf(w, "decision: deny\npolicy:   -\nrule:     %s\nreason:   warden could not parse the statement: %v\n", policy.RuleBuiltin, err)
		return &exitError{code: 2, msg: "denied"}
	}
	for i, st := range facts.Statements {
		fmt.Fprintf(w, "statement %d: %s\n", i+1, st.Kind)
		for _, a := range st.Accesses {
			fmt.Fprintf(w, "  needs %s on %s\n", a.Action, a.Object)
		}
		if st.Refusal != "" {
			fmt.Fprintf(w, "  refused always: %s\n", st.Refusal)
		}
	}
	d := s.DecideFacts(target, facts)
	fmt.Fprintf(w, "decision: %s\npolicy:   %s\nrule:     %s\nreason:   %s\n", d.Effect, orDash(d.Policy), d.Rule, d.Reason)
	switch d.Effect {
	case policy.Review:
		approvers := d.Approvers
		if approvers == "" {
			approvers = "admins"
		}
		fmt.Fprintf(w, "approvals: %d from %s\nclient sees: the statement is held until approved, or ERROR 42501: %s\n", max(d.MinApprovals, 1), approvers, d.Message())
		return &exitError{code: 3, msg: "held for review"}
	case policy.Deny:
		fmt.Fprintf(w, "client sees: ERROR 42501: %s\n", d.Message())
		return &exitError{code: 2, msg: "denied"}
	}
	return nil
}

// article is the indefinite article before a target type.
func article(typ string) string {
	if typ == "http" || strings.HasPrefix(typ, "a") || strings.HasPrefix(typ, "e") || strings.HasPrefix(typ, "i") || strings.HasPrefix(typ, "o") || strings.HasPrefix(typ, "u") {
		return "an"
	}
	return "a"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if strings.HasSuffix(word, "y") {
		return fmt.Sprintf("%d %sies", n, word[:len(word)-1])
	}
	return fmt.Sprintf("%d %ss", n, word)
}
