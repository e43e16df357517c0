package main

// `warden reviews`: the human side of held requests (issue #4). An
// operator lists what is waiting, reads exactly what would run, and
// approves or denies it, through a running gateway's admin API
// (/api/v1/reviews, see internal/admin). It uses the operator commands'
// client (ops.go): --server/$WARDEN_SERVER, --token/--token-file/
// $WARDEN_TOKEN, and an API refusal becomes exit 1 with the API's message
// ("warden: 403 self_approval: you requested review …").
//
// Who may do what is the gateway's decision, not this command's: listing
// needs an admin; approving and denying need an approver of the review's
// rule (the admins, or the rule's `approvers`), never its requester; and
// the requester may show its own review.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/warden-gateway/warden/internal/admin"
	"github.com/warden-gateway/warden/internal/review"
)

// statementColumn is how much of a statement the review table shows;
// `reviews show` prints all of it.
const statementColumn = 60

// reviewStates are the --state values of `reviews list`, as the API takes
// them.
var reviewStates = []string{
	string(review.Pending), string(review.Approved), string(review.Denied),
	string(review.Expired), string(review.Executed), "any",
}

func reviewsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reviews",
		Short: "List, show, approve and deny requests held for human review on a running gateway",
		Long: `Requests that policy holds for review wait on a running gateway until a
human decides. These commands talk to its admin API (--server, default
$WARDEN_SERVER, else ` + defaultServer + `) with a token (--token-file,
--token or $WARDEN_TOKEN).

Listing needs an admin. Approving and denying need an approver of the
review's rule (the admins, or the rule's approvers), and never the identity
that made the request. The requester may show its own review.`,
	}
	cmd.AddCommand(reviewsListCmd(), reviewsShowCmd(), reviewDecideCmd("approve"), reviewDecideCmd("deny"))
	return cmd
}

func reviewsListCmd() *cobra.Command {
	var (
		api                    apiFlags
		state, subject, target string
		limit                  int
		asJSON                 bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List reviews (pending ones by default): id, state, requester, target, rule, statement, age",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !isReviewState(state) {
				return fmt.Errorf("--state must be one of %s, not %q", strings.Join(reviewStates, ", "), state)
			}
			if limit < 1 {
				return fmt.Errorf("--limit must be positive")
			}
			c, err := api.client(cmd)
			if err != nil {
				return err
			}
			q := url.Values{"state": {state}, "limit": {strconv.Itoa(limit)}}
			if subject != "" {
				q.Set("subject", subject)
			}
			if target != "" {
				q.Set("target", target)
			}
			var list admin.ReviewList
			if err := c.do(cmd.Context(), http.MethodGet, admin.ReviewsPath, q, nil, &list); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetEscapeHTML(false) // statements are full of < and >
				for i := range list.Reviews {
					if err := enc.Encode(&list.Reviews[i]); err != nil {
						return err
					}
				}
				return nil
			}
			if len(list.Reviews) == 0 {
				what := state + " reviews"
				if state == "any" {
					what = "reviews"
				}
				_, err := fmt.Fprintf(w, "no %s\n", what)
				return err
			}
			return printReviews(w, list.Reviews, time.Now())
		},
	}
	api.register(cmd)
	fs := cmd.Flags()
	fs.StringVar(&state, "state", string(review.Pending), "only reviews in this state: "+strings.Join(reviewStates, ", "))
	fs.StringVar(&subject, "subject", "", "only reviews requested by this subject")
	fs.StringVar(&target, "target", "", "only reviews of this target")
	fs.IntVar(&limit, "limit", admin.DefaultReviewLimit, fmt.Sprintf("at most N reviews (the gateway returns at most %d)", admin.MaxReviewLimit))
	fs.BoolVar(&asJSON, "json", false, "print JSON lines (one review each)")
	return cmd
}

func isReviewState(s string) bool {
	for _, v := range reviewStates {
		if s == v {
			return true
		}
	}
	return false
}

func reviewsShowCmd() *cobra.Command {
	var (
		api    apiFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Print a review: the exact statement held, who asked, the rule, approvals and outcome",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := api.client(cmd)
			if err != nil {
				return err
			}
			var v admin.ReviewView
			if err := c.do(cmd.Context(), http.MethodGet, admin.ReviewPath(args[0]), nil, nil, &v); err != nil {
				return err
			}
			if v.Review == nil {
				return fmt.Errorf("the gateway answered no review for %s", sanitize(args[0]))
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetEscapeHTML(false)
				enc.SetIndent("", "  ")
				return enc.Encode(&v)
			}
			return printReview(cmd.OutOrStdout(), &v, time.Now())
		},
	}
	api.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the review as JSON")
	return cmd
}

// reviewDecideCmd is `reviews approve` or `reviews deny`.
func reviewDecideCmd(verb string) *cobra.Command {
	var (
		api     apiFlags
		comment string
	)
	path, short := admin.ApprovePath, "Approve a held request: once enough approvers agree, exactly that request may run, once"
	if verb == "deny" {
		path, short = admin.DenyPath, "Deny a held request: its client is refused, and nothing runs"
	}
	cmd := &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(comment) > admin.MaxCommentBytes {
				return fmt.Errorf("--comment is longer than %d bytes", admin.MaxCommentBytes)
			}
			c, err := api.client(cmd)
			if err != nil {
				return err
			}
			var v admin.ReviewView
			if err := c.do(cmd.Context(), http.MethodPost, path(args[0]), nil, admin.DecisionRequest{Comment: comment}, &v); err != nil {
				return err
			}
			if v.Review == nil {
				return fmt.Errorf("the gateway answered no review for %s", sanitize(args[0]))
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "review %s: %s\n", sanitize(v.ID), reviewState(v.Review))
			return err
		},
	}
	api.register(cmd)
	cmd.Flags().StringVar(&comment, "comment", "", "why; shown to the requester and kept with the review and in the audit log")
	return cmd
}

// reviewState is a review's state, with the approvals count while more
// than one approver is needed or it is still pending.
func reviewState(rv *review.Review) string {
	s := cell(string(rv.State), 20)
	need := max(rv.MinApprovals, 1)
	if rv.State == review.Pending || need > 1 {
		s += fmt.Sprintf(" (%d of %d approvals)", len(rv.Approvals), need)
	}
	return s
}

// printReviews prints a table of reviews.
func printReviews(w io.Writer, rvs []admin.ReviewView, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tSUBJECT\tTARGET\tRULE\tSTATEMENT\tAGE")
	for _, v := range rvs {
		if v.Review == nil {
			continue
		}
		state := cell(string(v.State), 20)
		if need := max(v.MinApprovals, 1); need > 1 && v.State == review.Pending {
			state += fmt.Sprintf(" %d/%d", len(v.Approvals), need)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			cell(v.ID, 64), state, cell(v.Subject, 40), cell(v.Target, 30), cell(v.Rule, 40),
			cell(squeeze(v.Statement), statementColumn), reviewAge(v.CreatedAt, now))
	}
	return tw.Flush()
}

// reviewAge is how long ago t was, in the largest whole unit: 45s, 12m, 5h, 3d.
func reviewAge(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return strconv.Itoa(max(int(d/time.Second), 0)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d"
}

// printReview prints every field of a review, one per line; the
// statement in full, on its own indented lines, exactly as it would run
// (made safe for the terminal).
func printReview(w io.Writer, v *admin.ReviewView, now time.Time) error {
	rv := v.Review
	var b strings.Builder
	line := func(k, val string) {
		if val != "" {
			fmt.Fprintf(&b, "%-16s%s\n", k+":", val)
		}
	}
	when := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		s := t.UTC().Format(time.RFC3339)
		if d := t.Sub(now).Round(time.Second); d > 0 {
			return s + " (in " + d.String() + ")"
		}
		return s + " (" + now.Sub(t).Round(time.Second).String() + " ago)"
	}
	line("ID", sanitize(rv.ID))
	line("State", reviewState(rv))
	requester := sanitize(rv.Subject)
	if rv.Issuer != "" {
		requester += " (issuer " + sanitize(rv.Issuer) + ")"
	}
	line("Requested by", requester)
	line("Groups", sanitize(strings.Join(rv.Groups, ", ")))
	session := sanitize(rv.SessionID)
	if rv.Protocol != "" {
		session += " (" + sanitize(rv.Protocol) + ")"
	}
	line("Session", strings.TrimSpace(session))
	line("Target", sanitize(rv.Target))
	line("Kind", sanitize(rv.Kind))
	rule := sanitize(rv.Rule)
	if rv.Policy != "" {
		rule += " (policy " + sanitize(rv.Policy) + ")"
	}
	line("Rule", rule)
	line("Reason", sanitize(rv.Reason))
	approvers := sanitize(rv.Approvers)
	if approvers == "" {
		approvers = "admins"
	}
	line("Approvers", approvers)
	b.WriteString("Statement:\n")
	for _, l := range strings.Split(strings.ReplaceAll(rv.Statement, "\r\n", "\n"), "\n") {
		b.WriteString("    " + sanitize(strings.ReplaceAll(l, "\t", "    ")) + "\n")
	}
	line("Params hash", sanitize(rv.ParamsHash))
	line("Fingerprint", sanitize(rv.Fingerprint))
	line("Policy version", sanitize(rv.PolicyVersion))
	line("Created", when(rv.CreatedAt))
	if rv.State == review.Pending {
		line("Expires", when(rv.ExpiresAt))
	}
	line("Decided", when(rv.DecidedAt))
	if rv.DeniedBy != "" {
		denied := sanitize(rv.DeniedBy)
		if rv.DenyComment != "" {
			denied += ": " + strconv.Quote(rv.DenyComment)
		}
		line("Denied by", denied)
	}
	if rv.State == review.Approved {
		line("Grant expires", when(rv.GrantExpires))
	}
	line("Executed", when(rv.ExecutedAt))
	line("Result", sanitize(rv.Result))
	if len(rv.Approvals) > 0 {
		b.WriteString("Approvals:\n")
		for _, a := range rv.Approvals {
			fmt.Fprintf(&b, "  - %s", sanitize(a.By))
			if a.Issuer != "" {
				fmt.Fprintf(&b, " (issuer %s)", sanitize(a.Issuer))
			}
			if !a.Time.IsZero() {
				fmt.Fprintf(&b, " at %s", a.Time.UTC().Format(time.RFC3339))
			}
			if a.Comment != "" {
				// Quoted: a comment is one line, whatever it holds.
				fmt.Fprintf(&b, ": %s", strconv.Quote(a.Comment))
			}
			b.WriteByte('\n')
		}
	}
	line("Console", sanitize(v.URL))
	_, err := io.WriteString(w, b.String())
	return err
}
