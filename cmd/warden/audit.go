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
	cmd := &cobra.Command{Use: "audit", Short: "Read, search, export and check the audit log"}
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

	var (
		f               auditFilter
		searchAPIFlags  apiFlags
		limit, pageSize int
		newest, asJSON  bool
	)
	search := &cobra.Command{
		Use:   "search",
		Short: "Search the audit log of a running gateway (--server) or of a local store (--config, --store)",
		Long: `Search the audit log. With --server (or $WARDEN_SERVER, or when neither
--config nor --store is given) it asks a running gateway's admin API, following
its pages up to --limit events, and prints a table (--json: JSON lines). With
--config or --store it reads the local SQLite store and prints JSON lines.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkDecision(f.decision); err != nil {
				return fmt.Errorf("search: %w", err)
			}
			useAPI, err := searchUsesAPI(cmd)
			if err != nil {
				return err
			}
			if useAPI {
				return searchAPI(cmd, &searchAPIFlags, &f, limit, pageSize, newest, asJSON)
			}
			q := store.Query{
				Subject: f.subject, Target: f.target, Decision: f.decision, Kind: f.kind,
				SessionID: f.session, Text: f.text, Limit: limit, Newest: newest,
			}
			now := time.Now()
			if q.Since, err = parseWhen("since", f.since, now); err != nil {
				return fmt.Errorf("search: %w", err)
			}
			if q.Until, err = parseWhen("until", f.until, now); err != nil {
				return fmt.Errorf("search: %w", err)
			}
			st, err := openStore(cmd, path, storePath)
			if err != nil {
				return err
			}
			defer st.Close()
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
	searchAPIFlags.register(search)
	f.register(search)
	sf := search.Flags()
	sf.StringVar(&f.text, "text", "", "request text contains (case-sensitive)")
	sf.StringVar(&f.since, "since", "", "only events at or after this time: RFC 3339, or a duration ago (1h)")
	sf.StringVar(&f.until, "until", "", "only events before this time: RFC 3339, or a duration ago")
	sf.IntVar(&limit, "limit", 100, "at most N events (a local store returns at most 1000)")
	sf.BoolVar(&newest, "newest", true, "newest first")
	sf.BoolVar(&asJSON, "json", false, "print JSON lines (with --config/--store the output is always JSON lines)")
	sf.IntVar(&pageSize, "page-size", store.MaxQueryLimit, "events per API request")
	sf.MarkHidden("page-size") // for tests of cursor paging
	cmd.AddCommand(verify, search, auditTailCmd(), auditExportCmd(&path, &storePath))
	return cmd
}
