package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
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

	var token, sub, issuerFlag, target, sql string
	var claims []string
	explain := &cobra.Command{
		Use:   "explain --target T --sql SQL (--token T | --sub S [--claim k=v]...)",
		Short: "Print the decision for a request, the rule that made it and the statement facts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			eng, err := policy.Compile(cfg)
			if err != nil {
				return err
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
			if target == "" || sql == "" {
				return errors.New("explain: --target and --sql are required")
			}
			var schema string
			for _, t := range cfg.Targets {
				if t.Name == target {
					schema = t.Schema
				}
			}
			if schema == "" {
				return fmt.Errorf("explain: unknown target %q", target)
			}
			return explainSQL(cmd.OutOrStdout(), eng.Bind(p), target, schema, sql)
		},
	}
	explain.Flags().StringVar(&token, "token", "", "an access token to verify against the configured issuers")
	explain.Flags().StringVar(&sub, "sub", "", "explain for this subject without a token")
	explain.Flags().StringVar(&issuerFlag, "issuer", "", "with --sub: the issuer the identity comes from (default: the first configured)")
	explain.MarkFlagsMutuallyExclusive("token", "sub")
	explain.MarkFlagRequired("target")
	explain.MarkFlagRequired("sql")
	explain.Flags().StringArrayVar(&claims, "claim", nil, "claim key=value for --sub (groups=analysts)")
	explain.Flags().StringVar(&target, "target", "", "target name")
	explain.Flags().StringVar(&sql, "sql", "", "SQL text")

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
