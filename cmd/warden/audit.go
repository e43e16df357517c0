package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/store"
)

// exitError carries an exit status.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }
func (e *exitError) ExitCode() int { return e.code }

func openStore(cmd *cobra.Command, path string) (*store.SQLite, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	p, err := gateway.StorePath(cfg)
	if err != nil {
		return nil, err
	}
	return store.OpenSQLite(cmd.Context(), p, store.Options{})
}

func auditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read and check the audit log"}
	var path string
	cmd.PersistentFlags().StringVarP(&path, "config", "c", "warden.yaml", "configuration file (names the store)")

	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit log's hash chain; exit 1 naming the first broken record",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openStore(cmd, path)
			if err != nil {
				return err
			}
			defer st.Close()
			checked, firstBad, err := st.Verify(cmd.Context())
			if firstBad != 0 {
				return &exitError{code: 1, msg: fmt.Sprintf("audit chain broken at record %d (%d records checked): %v", firstBad, checked, err)}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %d records, hash chain intact\n", checked)
			return nil
		},
	}

	var q store.Query
	var since time.Duration
	search := &cobra.Command{
		Use:   "search",
		Short: "Print audit records as JSON lines (reads the local store)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openStore(cmd, path)
			if err != nil {
				return err
			}
			defer st.Close()
			if since > 0 {
				q.Since = time.Now().Add(-since)
			}
			evs, err := st.Query(cmd.Context(), q)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			for i := range evs {
				if err := enc.Encode(&evs[i]); err != nil {
					return err
				}
			}
			return nil
		},
	}
	search.Flags().StringVar(&q.Subject, "subject", "", "only this subject")
	search.Flags().StringVar(&q.Target, "target", "", "only this target")
	search.Flags().StringVar(&q.Decision, "decision", "", "only this decision (allow, deny, error)")
	search.Flags().StringVar(&q.Text, "text", "", "request text contains")
	search.Flags().DurationVar(&since, "since", 0, "only the last DURATION")
	search.Flags().IntVar(&q.Limit, "limit", 100, "at most N records")
	search.Flags().BoolVar(&q.Newest, "newest", true, "newest first")
	cmd.AddCommand(verify, search)
	return cmd
}
