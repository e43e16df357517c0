package main

// Operator commands against a running gateway's admin API (/api/v1/, see
// internal/admin): audit tail and search, sessions list and kill, revoke.
// They share one small client: the server URL and admin token come from
// flags or the environment, every request is bounded by a timeout, and the
// API's JSON errors (admin.ErrorBody) become exit 1 with the status and
// code: "warden: 403 forbidden: ...".
//
// `audit export` is here too, though it reads the local store: it is the
// operator's other way out of the log, for a SIEM.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/warden-gateway/warden/internal/admin"
	"github.com/warden-gateway/warden/internal/audit"
	"github.com/warden-gateway/warden/internal/store"
)

// Defaults and bounds of the admin API client.
const (
	// defaultServer is where `warden serve` listens for HTTP by default.
	defaultServer = "http://127.0.0.1:8080"
	// defaultRequestTimeout bounds each API request.
	defaultRequestTimeout = 30 * time.Second
	// maxResponseBytes bounds an API response body: a full audit page is
	// store.MaxQueryLimit events, each with a bounded request text.
	maxResponseBytes = 64 << 20
	// maxTokenFileBytes bounds a --token-file; a JWT is a few KiB.
	maxTokenFileBytes = 64 << 10
	// requestColumn is how much of a request's text a table shows.
	requestColumn = 80
)

// ---- the client --------------------------------------------------------------

// apiFlags are the flags every admin API command takes.
type apiFlags struct {
	server, token, tokenFile string
	timeout                  time.Duration
}

func (f *apiFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.server, "server", "", "gateway URL (default $WARDEN_SERVER, else "+defaultServer+")")
	fs.StringVar(&f.tokenFile, "token-file", "", `file holding an admin access token ("-": standard input)`)
	fs.StringVar(&f.token, "token", "", "admin access token (default $WARDEN_TOKEN; visible to other local users in the process list: prefer --token-file or $WARDEN_TOKEN)")
	fs.DurationVar(&f.timeout, "timeout", defaultRequestTimeout, "bound on each API request")
}

// client resolves the flags and the environment into an API client.
// Flags win over the environment.
func (f *apiFlags) client(cmd *cobra.Command) (*apiClient, error) {
	raw := f.server
	if raw == "" {
		raw = os.Getenv("WARDEN_SERVER")
	}
	if raw == "" {
		raw = defaultServer
	}
	base, err := parseServer(raw)
	if err != nil {
		return nil, err
	}
	tok, err := f.resolveToken(cmd.InOrStdin())
	if err != nil {
		return nil, err
	}
	if f.timeout <= 0 {
		return nil, errors.New("--timeout must be positive")
	}
	return &apiClient{
		base:    base,
		token:   tok,
		timeout: f.timeout,
		http: &http.Client{
			// The admin API never redirects. Following one would send
			// the token on to wherever it points (same host only, but a
			// different path is already a different service).
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// resolveToken returns the admin token: --token, --token-file or
// $WARDEN_TOKEN, in that order. No message ever contains it.
func (f *apiFlags) resolveToken(stdin io.Reader) (string, error) {
	var tok string
	switch {
	case f.token != "" && f.tokenFile != "":
		return "", errors.New("give --token or --token-file, not both")
	case f.token != "":
		tok = f.token
	case f.tokenFile != "":
		r := stdin
		name := "standard input"
		if f.tokenFile != "-" {
			fh, err := os.Open(f.tokenFile)
			if err != nil {
				return "", fmt.Errorf("--token-file: %w", err)
			}
			defer fh.Close()
			r, name = fh, f.tokenFile
		}
		b, err := io.ReadAll(io.LimitReader(r, maxTokenFileBytes+1))
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		if len(b) > maxTokenFileBytes {
			return "", fmt.Errorf("--token-file %s: larger than %d bytes; it should hold one token", name, maxTokenFileBytes)
		}
		if tok = strings.TrimSpace(string(b)); tok == "" {
			return "", fmt.Errorf("--token-file %s is empty", name)
		}
	default:
		tok = os.Getenv("WARDEN_TOKEN")
		if tok == "" {
			return "", errors.New("no admin token: give --token-file FILE or set WARDEN_TOKEN")
		}
	}
	// A token goes into a header: refuse what cannot be one rather than
	// let the HTTP library fail with a message that might quote it.
	if strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return "", errors.New("the admin token contains whitespace or non-ASCII characters; is it the right file?")
	}
	return tok, nil
}

// parseServer checks a --server URL. Plain http is accepted only to a
// loopback host: anywhere else the bearer token would cross the network
// in cleartext (the gateway requires TLS on non-loopback listeners too).
func parseServer(raw string) (*url.URL, error) {
	if !strings.Contains(raw, "://") {
		return nil, fmt.Errorf("--server %q: want an http:// or https:// URL", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("--server: %w", err)
	}
	shown := u.Redacted() // never repeat a password someone put in the URL
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("--server %q: want an http:// or https:// URL", shown)
	case u.Host == "":
		return nil, fmt.Errorf("--server %q: no host", shown)
	case u.User != nil:
		return nil, fmt.Errorf("--server %q: credentials in the URL are not used; give the token with --token-file or WARDEN_TOKEN", shown)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("--server %q: want a base URL without query or fragment", shown)
	case u.Scheme == "http" && !loopbackHost(u.Hostname()):
		return nil, fmt.Errorf("--server %q: plain http to a non-loopback host would send the admin token in cleartext; use https://", shown)
	}
	// A path is a prefix (a gateway behind a reverse proxy at /warden).
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/")
	return u, nil
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// apiClient talks to one gateway's admin API.
type apiClient struct {
	base    *url.URL
	token   string
	timeout time.Duration
	http    *http.Client
}

// apiError is an answer other than 2xx. Body is the API's ErrorBody; a
// response that is not one (a proxy's error page, another service) keeps
// a sanitised excerpt in Text.
type apiError struct {
	Status int
	Body   admin.ErrorBody
	Text   string
	Server string
}

func (e *apiError) Error() string {
	if e.Body.Code == "" {
		return fmt.Sprintf("%d %s from %s (not a warden admin API answer): %s",
			e.Status, http.StatusText(e.Status), e.Server, e.Text)
	}
	// The API's messages often repeat the code ("forbidden: x is not an
	// administrator"); say it once.
	msg := strings.TrimPrefix(e.Body.Error, e.Body.Code+": ")
	return fmt.Sprintf("%d %s: %s", e.Status, e.Body.Code, sanitize(msg))
}

// do sends one request to path (an escaped path under admin.Prefix, as
// admin.SessionPath builds) and decodes a 2xx JSON answer into out. The
// request is bounded by the client's timeout; if ctx ends first, the
// error is ctx's.
func (c *apiClient) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	ref := c.base.String() + path
	if len(query) > 0 {
		ref += "?" + query.Encode()
	}
	u, err := url.Parse(ref)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return c.transportError(ctx, err)
	}
	if len(raw) > maxResponseBytes {
		return fmt.Errorf("%s %s: answer from %s larger than %d bytes", method, path, c.base, maxResponseBytes)
	}
	if resp.StatusCode/100 != 2 {
		e := &apiError{Status: resp.StatusCode, Server: c.base.String()}
		if json.Unmarshal(raw, &e.Body) != nil || e.Body.Code == "" {
			e.Body = admin.ErrorBody{}
			e.Text = excerpt(raw)
			if loc := resp.Header.Get("Location"); loc != "" {
				e.Text += " (redirect to " + sanitize(loc) + ")"
			}
		}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: answer from %s is not the expected JSON: %w", method, path, c.base, err)
		}
	}
	return nil
}

// transportError names the server a request could not reach, or returns
// the parent context's error when the command was interrupted.
func (c *apiClient) transportError(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.DeadlineExceeded) {
		return fmt.Errorf("interrupted: %w", cause)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("no answer from warden at %s within %s", c.base, c.timeout)
	}
	// url.Error repeats the whole URL, query included; the base says
	// which server, and the cause says why.
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	return fmt.Errorf("cannot reach warden at %s: %w", c.base, err)
}

// excerpt is a short, printable piece of a non-API answer body.
func excerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "(empty body)"
	}
	return truncateRunes(sanitize(s), 200)
}

// ---- audit: tail and search --------------------------------------------------

// auditFilter is the filter part of GET /api/v1/audit.
type auditFilter struct {
	subject, target, decision, kind, session, text, since, until string
}

func (f *auditFilter) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.subject, "subject", "", "only this subject")
	fs.StringVar(&f.target, "target", "", "only this target")
	fs.StringVar(&f.decision, "decision", "", "only this decision (allow, deny, error)")
	fs.StringVar(&f.kind, "kind", "", "only this kind of event (statement, session.start, admin, …)")
	fs.StringVar(&f.session, "session", "", "only this session's events")
}

func (f *auditFilter) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{
		"subject": f.subject, "target": f.target, "decision": f.decision, "kind": f.kind,
		"session": f.session, "q": f.text, "since": f.since, "until": f.until,
	} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

func checkDecision(d string) error {
	switch d {
	case "", audit.Allow, audit.Deny, audit.Error:
		return nil
	}
	return fmt.Errorf("--decision must be %s, %s or %s, not %q", audit.Allow, audit.Deny, audit.Error, d)
}

// auditPages reads up to limit events matching v in the given order,
// starting after the cursor after (none: ""), following the API's cursors
// pageSize events per request, and hands each page to emit as it arrives.
// It stops early at the end of the log, and returns the cursor after the
// last event emitted, for the next call to continue from.
func (c *apiClient) auditPages(ctx context.Context, v url.Values, desc bool, limit, pageSize int, after string, emit func([]audit.Event) error) (string, error) {
	order := "asc"
	if desc {
		order = "desc"
	}
	for read := 0; read < limit; {
		q := cloneValues(v)
		q.Set("order", order)
		q.Set("limit", strconv.Itoa(min(limit-read, pageSize)))
		if after != "" {
			q.Set("after", after)
		}
		var page admin.AuditPage
		if err := c.do(ctx, http.MethodGet, admin.Prefix+"audit", q, nil, &page); err != nil {
			return after, err
		}
		if len(page.Events) == 0 {
			break
		}
		if err := emit(page.Events); err != nil {
			return after, err
		}
		read += len(page.Events)
		after = strconv.FormatInt(page.Events[len(page.Events)-1].ID, 10)
		if page.Next == "" {
			break
		}
	}
	return after, nil
}

// cloneValues copies v, so a page's order/limit/after never leak into the
// next.
func cloneValues(v url.Values) url.Values {
	c := make(url.Values, len(v)+3)
	for k, s := range v {
		c[k] = slices.Clone(s)
	}
	return c
}

func auditTailCmd() *cobra.Command {
	var (
		api      apiFlags
		f        auditFilter
		n        int
		follow   bool
		asJSON   bool
		interval time.Duration
		pageSize int
	)
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Print the newest audit events from a running gateway; --follow keeps printing new ones",
		Long: `Print the last N audit events (oldest first) from a running gateway's admin
API. With --follow, poll for new events every --interval until interrupted.
Needs an admin token (the config's admins rule).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := refuseLocalFlags(cmd, "audit tail"); err != nil {
				return err
			}
			if n < 0 {
				return errors.New("-n must not be negative")
			}
			if interval <= 0 || pageSize < 1 {
				return errors.New("--interval and --page-size must be positive")
			}
			if err := checkDecision(f.decision); err != nil {
				return err
			}
			c, err := api.client(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			v := f.values()
			p := newEventPrinter(cmd.OutOrStdout(), asJSON)

			// The newest N, newest first, then printed oldest first. With
			// -n 0 one is still read: its id is where a follow starts, so
			// that what matched before the command ran is not printed.
			var evs []audit.Event
			_, err = c.auditPages(ctx, v, true, max(n, 1), pageSize, "", func(page []audit.Event) error {
				evs = append(evs, page...)
				return nil
			})
			if err != nil {
				if follow && ctx.Err() != nil {
					return nil
				}
				return err
			}
			var cursor string
			if len(evs) > 0 {
				cursor = strconv.FormatInt(evs[0].ID, 10)
			}
			evs = evs[:min(n, len(evs))]
			slices.Reverse(evs)
			if follow {
				p.widths = slices.Clone(followWidths)
			}
			if err := p.print(evs); err != nil {
				return err
			}
			if !follow {
				return nil
			}
			return tailFollow(ctx, c, v, cursor, pageSize, interval, p, cmd.ErrOrStderr())
		},
	}
	api.register(cmd)
	f.register(cmd)
	fs := cmd.Flags()
	fs.IntVarP(&n, "lines", "n", 20, "print the last N events")
	fs.BoolVarP(&follow, "follow", "f", false, "keep printing new events until interrupted")
	fs.BoolVar(&asJSON, "json", false, "print JSON lines (one audit event each)")
	fs.DurationVar(&interval, "interval", time.Second, "with --follow, how often to poll")
	fs.IntVar(&pageSize, "page-size", store.MaxQueryLimit, "events per API request")
	fs.MarkHidden("page-size") // for tests of cursor paging
	return cmd
}

// tailFollow polls for events after cursor every interval until ctx ends
// (the root command's signal handling), and then returns nil. A gateway
// that cannot be reached is reported once and retried; an API error (the
// token expired, was revoked, is no longer an admin's) ends the command.
func tailFollow(ctx context.Context, c *apiClient, v url.Values, cursor string, pageSize int, interval time.Duration, p *eventPrinter, stderr io.Writer) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var failing bool
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		// Drain: a backlog (after a burst, or an outage) is read page
		// after page at once, not one page per tick.
		var perr, err error
		cursor, err = c.auditPages(ctx, v, false, math.MaxInt, pageSize, cursor, func(page []audit.Event) error {
			perr = p.print(page)
			return perr
		})
		switch {
		case perr != nil:
			return perr // standard output is gone
		case ctx.Err() != nil:
			return nil
		case err == nil:
			if failing {
				fmt.Fprintf(stderr, "warden: %s answers again\n", c.base)
				failing = false
			}
		default:
			if _, ok := errors.AsType[*apiError](err); ok {
				return err
			}
			if !failing {
				fmt.Fprintf(stderr, "warden: %v; retrying every %s\n", err, interval)
				failing = true
			}
		}
	}
}

// refuseLocalFlags refuses --config/--store (persistent flags of `audit`)
// on a command that only reads the API, rather than ignore them.
func refuseLocalFlags(cmd *cobra.Command, name string) error {
	if cmd.Flags().Changed("config") || cmd.Flags().Changed("store") {
		return fmt.Errorf("%s reads a running gateway (--server); it does not read --config or --store", name)
	}
	return nil
}

// searchUsesAPI decides where `audit search` reads: a running gateway
// (--server, WARDEN_SERVER, or neither --config nor --store given) or the
// local store (--config or --store). An explicit flag wins over the
// environment, so `--config` still reads the local store when
// WARDEN_SERVER is exported.
func searchUsesAPI(cmd *cobra.Command) (bool, error) {
	fs := cmd.Flags()
	server, local := fs.Changed("server"), fs.Changed("config") || fs.Changed("store")
	switch {
	case server && local:
		return false, errors.New("search: --server reads a running gateway and --config/--store a local store; give one or the other")
	case server:
		return true, nil
	case local:
		return false, nil
	}
	return true, nil
}

// searchAPI runs `audit search` against the admin API: up to limit
// events, following the API's cursors.
func searchAPI(cmd *cobra.Command, api *apiFlags, f *auditFilter, limit, pageSize int, newest, asJSON bool) error {
	if limit < 1 || pageSize < 1 {
		return errors.New("search: --limit and --page-size must be positive")
	}
	c, err := api.client(cmd)
	if err != nil {
		return err
	}
	// Printed page by page: memory stays bounded whatever --limit says.
	// The JSON lines are encoded as the local search encodes them, so both
	// modes print the same bytes.
	p := newEventPrinter(cmd.OutOrStdout(), asJSON)
	_, err = c.auditPages(cmd.Context(), f.values(), newest, limit, pageSize, "", p.print)
	return err
}

// parseWhen reads a --since/--until value as the admin API does: an RFC
// 3339 time, or a duration meaning that long ago. "" is no bound.
func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("--%s %q: want an RFC 3339 time (2006-01-02T15:04:05Z) or a duration ago (24h)", flag, s)
	}
	return now.Add(-d), nil
}

// ---- printing events -----------------------------------------------------------

// eventPrinter prints audit events one per line, as aligned columns or as
// JSON lines. Columns are aligned like text/tabwriter's, but the widths
// are kept from batch to batch and only grow, so that a follow, which
// prints a batch per poll, stays aligned (a tabwriter aligns only what it
// holds between flushes).
type eventPrinter struct {
	w      io.Writer
	json   *json.Encoder // nil: columns
	widths []int
	header bool // printed
}

var eventHeader = []string{"TIME", "ID", "KIND", "SUBJECT", "TARGET", "DECISION", "RULE", "REQUEST"}

// followWidths are the starting column widths of a follow: wide enough
// for the usual values (the longest kind is "statement.result", a rule
// "policy-name/allow[0]"), so that the first events, which may all be
// narrow, do not set columns that every later line overflows.
var followWidths = []int{20, 6, 16, 16, 12, 8, 24}

func newEventPrinter(w io.Writer, asJSON bool) *eventPrinter {
	p := &eventPrinter{w: w}
	if asJSON {
		p.json = json.NewEncoder(w)
	}
	return p
}

func (p *eventPrinter) print(evs []audit.Event) error {
	if len(evs) == 0 {
		return nil
	}
	if p.json != nil {
		for i := range evs {
			if err := p.json.Encode(&evs[i]); err != nil {
				return err
			}
		}
		return nil
	}
	rows := make([][]string, 0, len(evs)+1)
	if !p.header {
		rows = append(rows, eventHeader)
		p.header = true
	}
	for i := range evs {
		rows = append(rows, eventRow(&evs[i]))
	}
	if p.widths == nil {
		p.widths = make([]int, len(eventHeader)-1)
	}
	for _, r := range rows {
		for i, cell := range r[:len(r)-1] {
			p.widths[i] = max(p.widths[i], utf8.RuneCountInString(cell))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, cell := range r {
			b.WriteString(cell)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", p.widths[i]-utf8.RuneCountInString(cell)+2))
			}
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(p.w, b.String())
	return err
}

// eventRow is one event's cells. The request column falls back to what a
// record without request text has to say (a result's counts, a session
// end's reason).
func eventRow(ev *audit.Event) []string {
	text := ev.Request
	if ev.Status != 0 && text != "" {
		// HTTP and Kubernetes: the status answered, before the request line.
		text = strconv.FormatInt(ev.Status, 10) + " " + text
	}
	if text == "" {
		switch {
		case ev.Kind == audit.KindResult:
			text = fmt.Sprintf("#%d: %d rows, %d bytes, %s", ev.Seq, ev.Rows, ev.Bytes, time.Duration(ev.DurationUS)*time.Microsecond)
			if ev.Error != "" {
				text += ", error " + ev.Error
			}
		case ev.Error != "":
			text = "error: " + ev.Error
		default:
			text = ev.Reason
		}
	}
	return []string{
		ev.Time.UTC().Format(time.RFC3339),
		strconv.FormatInt(ev.ID, 10),
		cell(ev.Kind, 20),
		cell(ev.Subject, 40),
		cell(ev.Target, 30),
		cell(ev.Decision, 10),
		cell(ev.Rule, 40),
		cell(squeeze(text), requestColumn),
	}
}

// cell is a printable, bounded table cell; "-" for nothing.
func cell(s string, n int) string {
	s = sanitize(s)
	if s == "" {
		return "-"
	}
	return truncateRunes(s, n)
}

// sanitize makes s safe to print on an operator's terminal: audit records
// hold what clients sent, and an escape sequence in a SQL string must not
// drive the terminal, nor a bidi override reorder what it shows. Such
// characters are shown escaped (\x1b, \u202e); invalid UTF-8 as U+FFFD.
func sanitize(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) || r == utf8.RuneError }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == utf8.RuneError || unicode.IsPrint(r):
			b.WriteRune(r)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

// squeeze puts a statement on one line: runs of whitespace (newlines,
// tabs) become one space.
func squeeze(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// ---- audit export -----------------------------------------------------------------

func auditExportCmd(path, storePath *string) *cobra.Command {
	var since, until, out string
	var after int64
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write a stretch of the audit chain as JSON lines, verifiable offline (reads the local store)",
		Long: `Write the audit records from --since (and after --after-id) to --until as JSON
lines, one record each with its hash-chain link, in id order, for a SIEM or
an auditor. Reads the local store named by --config or --store. The export
is a contiguous stretch of the chain, never a filtered selection, so that
whoever receives it can re-verify it. With --out the file is written
privately (0600) and appears only once complete.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			var q store.Query
			var err error
			if q.Since, err = parseWhen("since", since, now); err != nil {
				return err
			}
			if q.Until, err = parseWhen("until", until, now); err != nil {
				return err
			}
			if after < 0 {
				return errors.New("--after-id must not be negative")
			}
			q.AfterID = after
			st, err := openStore(cmd, *path, *storePath)
			if err != nil {
				return err
			}
			defer st.Close()

			if out == "" || out == "-" {
				n, err := st.Export(cmd.Context(), cmd.OutOrStdout(), q)
				if err != nil {
					return fmt.Errorf("export: %w", err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "exported %d records\n", n)
				return nil
			}
			n, err := exportToFile(cmd.Context(), st, q, out)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "exported %d records to %s\n", n, out)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&since, "since", "", "start at this time: RFC 3339, or a duration ago (24h)")
	fs.StringVar(&until, "until", "", "end before this time: RFC 3339, or a duration ago")
	fs.Int64Var(&after, "after-id", 0, "start after this record id (the last id of a previous export)")
	fs.StringVarP(&out, "out", "o", "", "write to this file instead of standard output")
	return cmd
}

// exportToFile writes the export to a temporary file beside path and
// renames it into place once complete, so a SIEM watching the directory
// never picks up half an export that would read as a truncated chain.
func exportToFile(ctx context.Context, st *store.SQLite, q store.Query, path string) (n int64, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// CreateTemp makes it 0600: audit records hold personal data.
	if n, err = st.Export(ctx, tmp, q); err != nil {
		return n, fmt.Errorf("export: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return n, fmt.Errorf("export: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return n, fmt.Errorf("export: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return n, fmt.Errorf("export: %w", err)
	}
	return n, nil
}

// ---- sessions and revoke --------------------------------------------------------

func sessionsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "sessions", Short: "List and kill live client sessions on a running gateway"}

	var listAPI apiFlags
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List live sessions: id, subject, target, client, start, token expiry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := listAPI.client(cmd)
			if err != nil {
				return err
			}
			var sl admin.SessionList
			if err := c.do(cmd.Context(), http.MethodGet, admin.Prefix+"sessions", nil, nil, &sl); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				for i := range sl.Sessions {
					if err := enc.Encode(&sl.Sessions[i]); err != nil {
						return err
					}
				}
				return nil
			}
			return printSessions(w, sl.Sessions, time.Now())
		},
	}
	listAPI.register(list)
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON lines (one session each)")

	var killAPI apiFlags
	var reason string
	kill := &cobra.Command{
		Use:   "kill ID",
		Short: "Close a live session; its client is told why",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "" {
				return errors.New("sessions kill: empty session id")
			}
			c, err := killAPI.client(cmd)
			if err != nil {
				return err
			}
			var res admin.TerminateResult
			if err := c.do(cmd.Context(), http.MethodDelete, admin.SessionPath(args[0]), nil, admin.ActionRequest{Reason: reason}, &res); err != nil {
				return err
			}
			if !res.Terminated {
				return fmt.Errorf("session %s was not terminated", sanitize(args[0]))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "terminated session %s\n", sanitize(res.ID))
			return nil
		},
	}
	killAPI.register(kill)
	kill.Flags().StringVar(&reason, "reason", "", "why; shown to the client and kept in the audit log")

	cmd.AddCommand(list, kill)
	return cmd
}

// printSessions prints a table of sessions.
func printSessions(w io.Writer, ss []admin.Session, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSUBJECT\tTARGET\tCLIENT\tSTARTED\tTOKEN EXPIRES")
	for _, s := range ss {
		expires := "-"
		if !s.Expires.IsZero() {
			expires = s.Expires.UTC().Format(time.RFC3339)
			if d := s.Expires.Sub(now); d > 0 {
				expires += " (in " + d.Round(time.Second).String() + ")"
			} else {
				expires += " (expired)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n",
			cell(s.ID, 64), cell(s.Subject, 40), cell(s.Target, 30), cell(s.Client, 48),
			s.Started.UTC().Format(time.RFC3339), expires)
	}
	return tw.Flush()
}

func revokeCmd() *cobra.Command {
	var api apiFlags
	var reason string
	cmd := &cobra.Command{
		Use:   "revoke SUBJECT",
		Short: "Revoke an identity on a running gateway: refuse its tokens and close its open sessions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "" {
				return errors.New("revoke: empty subject")
			}
			c, err := api.client(cmd)
			if err != nil {
				return err
			}
			var res admin.RevokeResult
			if err := c.do(cmd.Context(), http.MethodPost, admin.RevokePath(args[0]), nil, admin.ActionRequest{Reason: reason}, &res); err != nil {
				return err
			}
			if !res.Revoked {
				return fmt.Errorf("%s was not revoked", sanitize(args[0]))
			}
			noun := "sessions"
			if res.SessionsTerminated == 1 {
				noun = "session"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s: %d %s closed\n", sanitize(res.Subject), res.SessionsTerminated, noun)
			return nil
		},
	}
	api.register(cmd)
	cmd.Flags().StringVar(&reason, "reason", "", "why; shown to the closed sessions' clients and kept in the audit log")
	return cmd
}
