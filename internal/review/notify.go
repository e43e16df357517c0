package review

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Notifier tells people about a review. event is one of the Kind*
// constants (KindReviewProposed, KindReviewApproved, KindReviewDenied).
// A Notifier must not modify r. Its failure is logged and audited, and
// never changes the review.
type Notifier interface {
	Notify(ctx context.Context, r *Review, event string) error
}

// Webhook formats.
const (
	FormatJSON  = "json"
	FormatSlack = "slack"
)

// Webhook headers.
const (
	// HeaderSignature carries "sha256=" and the hex HMAC-SHA256, keyed
	// with Webhook.Secret, of HeaderTimestamp's value, ".", and the body.
	HeaderSignature = "X-Warden-Signature"
	// HeaderTimestamp carries the Unix time (seconds) the request was
	// signed. It is inside the signature so a receiver can refuse a
	// replayed delivery by its age.
	HeaderTimestamp = "X-Warden-Timestamp"
	// HeaderEvent carries the event name, for routing without parsing.
	HeaderEvent = "X-Warden-Event"
)

// Webhook limits.
const (
	defaultWebhookTimeout = 5 * time.Second
	maxErrorBody          = 512      // bytes of a refusal's body kept in StatusError
	maxDrain              = 64 << 10 // bytes of a response read before closing it
	maxSlackStatement     = 2500     // a Slack section's text is at most 3000 characters
)

// Webhook is a Notifier that POSTs a JSON document to URL.
//
// With Format "json" (the default) the body is
//
//	{"event": "review.proposed", "review": {…the Review…}, "url": "<console link>"}
//
// With Format "slack" it is a Slack incoming-webhook message ("text" and
// "blocks") naming the requester, target and rule, with the statement in
// a code block and the warden commands that approve or deny it.
//
// If Secret is set, each request is signed so the receiver can check it
// came from warden and was not altered or replayed:
//
//	X-Warden-Timestamp: <unix seconds>
//	X-Warden-Signature: sha256=<hex HMAC-SHA256(Secret, timestamp + "." + body)>
//
// A receiver recomputes the HMAC over the timestamp header, a dot and
// the raw body, compares it in constant time, and refuses timestamps
// older than a few minutes. (Slack's own incoming webhooks ignore these
// headers; their URL is the secret, so it never appears in errors.)
//
// A delivery is bounded by Timeout; a response other than 2xx is an
// error (*StatusError). Redirects are not followed unless Client does.
type Webhook struct {
	URL    string // required: http or https
	Secret []byte // HMAC key; nil: requests are not signed
	// Client sends the requests. Default: a client that does not follow
	// redirects (a signed body must not be re-sent elsewhere).
	Client *http.Client
	Format string // FormatJSON (default) or FormatSlack
	// ConsoleURL is the console's base URL, as Config.ConsoleURL; the
	// message links to ConsoleURL+"/reviews/"+id. Default "": no link.
	ConsoleURL string
	// Timeout bounds one delivery. Default 5s.
	Timeout time.Duration
}

// StatusError is a webhook response other than 2xx.
type StatusError struct {
	StatusCode int
	Body       string // the start of the response body
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("review: webhook: status %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Body != "" {
		msg += ": " + strconv.Quote(e.Body)
	}
	return msg
}

var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Validate checks w's fields without any I/O.
func (w *Webhook) Validate() error {
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Not the URL itself: a Slack webhook URL is a credential.
		return errors.New("review: webhook: URL is not an absolute http(s) URL")
	}
	switch w.Format {
	case "", FormatJSON, FormatSlack:
	default:
		return fmt.Errorf("review: webhook: unknown format %q (want %q or %q)", w.Format, FormatJSON, FormatSlack)
	}
	if w.Timeout < 0 {
		return errors.New("review: webhook: negative timeout")
	}
	return nil
}

// Notify POSTs the review to the webhook.
func (w *Webhook) Notify(ctx context.Context, r *Review, event string) error {
	if err := w.Validate(); err != nil {
		return err
	}
	body, err := w.payload(r, event)
	if err != nil {
		return fmt.Errorf("review: webhook: encode: %w", err)
	}
	timeout := w.Timeout
	if timeout == 0 {
		timeout = defaultWebhookTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return errors.New("review: webhook: cannot build the request")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "warden")
	req.Header.Set(HeaderEvent, event)
	if len(w.Secret) > 0 {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req.Header.Set(HeaderTimestamp, ts)
		req.Header.Set(HeaderSignature, Sign(w.Secret, ts, body))
	}

	client := w.Client
	if client == nil {
		client = noRedirects
	}
	resp, err := client.Do(req)
	if err != nil {
		// *url.Error repeats the URL, which for Slack is the credential.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return fmt.Errorf("review: webhook: post: %w", err)
	}
	defer func() {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain)) // lets the connection be reused
		resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return &StatusError{StatusCode: resp.StatusCode, Body: strings.TrimSpace(string(snippet))}
	}
	return nil
}

// Sign returns the X-Warden-Signature value for body sent at timestamp:
// "sha256=" and the hex HMAC-SHA256, keyed with secret, of
// timestamp + "." + body.
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	io.WriteString(mac, timestamp)
	io.WriteString(mac, ".")
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func (w *Webhook) link(id string) string {
	if w.ConsoleURL == "" {
		return ""
	}
	return consoleLink(w.ConsoleURL, id)
}

func (w *Webhook) payload(r *Review, event string) ([]byte, error) {
	if w.Format == FormatSlack {
		return json.Marshal(slackMessage(r, event, w.link(r.ID)))
	}
	return json.Marshal(struct {
		Event  string  `json:"event"`
		Review *Review `json:"review"`
		URL    string  `json:"url,omitempty"`
	}{event, r, w.link(r.ID)})
}

// Slack Block Kit, the subset used here
// (https://api.slack.com/reference/block-kit/blocks).
type (
	slackPayload struct {
		Text   string       `json:"text"` // the fallback: notifications, old clients
		Blocks []slackBlock `json:"blocks"`
	}
	slackBlock struct {
		Type   string      `json:"type"` // "section"
		Text   *slackText  `json:"text,omitempty"`
		Fields []slackText `json:"fields,omitempty"`
	}
	slackText struct {
		Type string `json:"type"` // "mrkdwn"
		Text string `json:"text"`
	}
)

func mrkdwn(s string) slackText { return slackText{Type: "mrkdwn", Text: s} }

// slackEscape escapes the three characters Slack's mrkdwn gives meaning
// to (https://api.slack.com/reference/surfaces/formatting#escaping), so a
// statement or a subject cannot forge a link or a mention.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

func slackMessage(r *Review, event, link string) slackPayload {
	requester := slackEscape(r.Subject)
	if r.Issuer != "" {
		requester += " (" + slackEscape(r.Issuer) + ")"
	}
	what := slackEscape(orUnknown(r.Kind))
	var headline string
	switch event {
	case KindReviewProposed:
		headline = fmt.Sprintf("Review %s: %s wants to run %s on %s", r.ID, requester, what, slackEscape(r.Target))
	case KindReviewApproved:
		headline = fmt.Sprintf("Review %s approved: %s may run %s on %s once", r.ID, requester, what, slackEscape(r.Target))
	case KindReviewDenied:
		headline = fmt.Sprintf("Review %s denied by %s", r.ID, slackEscape(r.DeniedBy))
	default:
		headline = fmt.Sprintf("Review %s: %s", r.ID, slackEscape(event))
	}
	if link != "" {
		headline += " <" + link + "|open>"
	}

	stmt := truncate(r.Statement, maxSlackStatement)
	if len(stmt) < len(r.Statement) {
		stmt += " …"
	}
	// A ``` inside the statement would end the code block early.
	stmt = strings.ReplaceAll(slackEscape(stmt), "```", "`\u200b``")

	blocks := []slackBlock{
		{Type: "section", Text: ptr(mrkdwn("*" + headline + "*"))},
		{Type: "section", Fields: []slackText{
			mrkdwn("*Requester*\n" + requester),
			mrkdwn("*Target*\n" + slackEscape(r.Target) + " (" + slackEscape(r.Protocol) + ")"),
			mrkdwn("*Rule*\n" + slackEscape(ruleName(r))),
			deadline(r),
		}},
		{Type: "section", Text: ptr(mrkdwn("```" + stmt + "```"))},
	}
	if r.Reason != "" {
		blocks = append(blocks, slackBlock{Type: "section", Text: ptr(mrkdwn("*Why*\n" + slackEscape(truncate(r.Reason, 1000))))})
	}
	if event == KindReviewProposed {
		cmds := fmt.Sprintf("Approve: `warden reviews approve %s`\nDeny: `warden reviews deny %s`", r.ID, r.ID)
		if link != "" {
			cmds += "\n<" + link + "|Open in the console>"
		}
		blocks = append(blocks, slackBlock{Type: "section", Text: ptr(mrkdwn(cmds))})
	}
	return slackPayload{Text: headline, Blocks: blocks}
}

// deadline is the time that matters next: when a pending review must be
// decided, or when an approved one must be run.
func deadline(r *Review) slackText {
	if r.State == Approved {
		return mrkdwn("*Run by*\n" + r.GrantExpires.UTC().Format(time.RFC3339))
	}
	return mrkdwn("*Decide by*\n" + r.ExpiresAt.UTC().Format(time.RFC3339))
}

func ptr[T any](v T) *T { return &v }

// Compile-time interface guard.
var _ Notifier = (*Webhook)(nil)
