package main

import (
	"encoding/json"
	"fmt"
	"os"
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

// openStore opens an existing audit store: the one named by --store, or
// by the config's `store:` key. It never creates one: a missing log must
// not verify as an empty, intact one.
func openStore(cmd *cobra.Command, path, storePath string) (*store.SQLite, error) {
	p := storePath
	if p == "" {
		cfg, err := config.Load(path)
		if err != nil {
			return nil, err
		}
		if p, err = gateway.StorePath(cfg); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("audit store %s: %w", p, err)
	}
	return store.OpenSQLite(cmd.Context(), p, store.Options{})
}

func auditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read and check the audit log"}
	var path, storePath string
	cmd.PersistentFlags().StringVarP(&path, "config", "c", "warden.yaml", "configuration file (names the store)")
	cmd.PersistentFlags().StringVar(&storePath, "store", "", "audit store file (SQLite); instead of reading --config, whose ${ENV} secrets must then be set")

	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit log's hash chain; exit 1 naming the first broken record",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openStore(cmd, path, storePath)
			if err != nil {
				return err
			}
			defer st.Close()
			checked, firstBad, err := st.Verify(cmd.Context())
			if firstBad != 0 {
				return &exitError{code: 1, msg: fmt.Sprintf("%v (%d records checked before it)", err, checked)}
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
			st, err := openStore(cmd, path, storePath)
			if err != nil {
				return err
			}
			defer st.Close()
			switch q.Decision {
			case "", "allow", "deny", "error":
			default:
				return fmt.Errorf("search: --decision must be allow, deny or error, not %q", q.Decision)
			}
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
