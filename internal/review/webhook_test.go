package review_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/review"
)

// delivery is what the test server received.
type delivery struct {
	header http.Header
	body   []byte
	sigOK  bool
}

// webhookServer verifies each request's signature itself, from the
// documented recipe rather than review.Sign.
func webhookServer(t *testing.T, secret []byte, status int) (*httptest.Server, <-chan delivery) {
	t.Helper()
	got := make(chan delivery, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts := r.Header.Get("X-Warden-Timestamp")
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(ts + "." + string(body)))
		want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		got <- delivery{header: r.Header.Clone(), body: body, sigOK: hmac.Equal([]byte(r.Header.Get("X-Warden-Signature")), []byte(want))}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func sampleReview() *review.Review {
	return &review.Review{
		ID: "rv_abcdefghijklmnop", State: review.Pending, Fingerprint: review.Fingerprint(baseReq),
		Subject: "agent-1", Issuer: issuer, Protocol: "postgres", Target: "prod-db",
		Statement: "DELETE FROM public.orders WHERE note = '<@U123> & ```x```'", Kind: "delete",
		PolicyVersion: "v1", Policy: "analyst-agents", Rule: "review[0]", MinApprovals: 1,
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour),
	}
}

func TestWebhook(t *testing.T) {
	secret := []byte("s3cret")
	tests := []struct {
		name   string
		format string
		check  func(t *testing.T, body []byte)
	}{
		{"json", "", func(t *testing.T, body []byte) {
			var p struct {
				Event  string        `json:"event"`
				Review review.Review `json:"review"`
				URL    string        `json:"url"`
			}
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatal(err)
			}
			if p.Event != review.KindReviewProposed || p.Review.ID != "rv_abcdefghijklmnop" ||
				p.Review.Statement != sampleReview().Statement || p.Review.State != review.Pending ||
				p.URL != "http://127.0.0.1:8080/reviews/rv_abcdefghijklmnop" {
				t.Errorf("payload = %s", body)
			}
		}},
		{"slack", review.FormatSlack, func(t *testing.T, body []byte) {
			var p struct {
				Text   string `json:"text"`
				Blocks []struct {
					Type string `json:"type"`
					Text *struct {
						Type, Text string
					} `json:"text"`
					Fields []struct{ Type, Text string } `json:"fields"`
				} `json:"blocks"`
			}
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(p.Text, "rv_abcdefghijklmnop") || !strings.Contains(p.Text, "agent-1") || !strings.Contains(p.Text, "prod-db") {
				t.Errorf("text = %q", p.Text)
			}
			var all strings.Builder
			for _, b := range p.Blocks {
				if b.Type != "section" {
					t.Errorf("block type %q", b.Type)
				}
				if b.Text != nil {
					all.WriteString(b.Text.Text + "\n")
				}
				for _, f := range b.Fields {
					all.WriteString(f.Text + "\n")
				}
			}
			s := all.String()
			for _, want := range []string{
				"*Requester*\nagent-1", "*Target*\nprod-db", "*Rule*\nanalyst-agents/review[0]",
				"```DELETE FROM public.orders WHERE note = '&lt;@U123&gt; &amp; `\u200b``x`\u200b``'```",
				"`warden reviews approve rv_abcdefghijklmnop`", "`warden reviews deny rv_abcdefghijklmnop`",
				"<http://127.0.0.1:8080/reviews/rv_abcdefghijklmnop|Open in the console>",
			} {
				if !strings.Contains(s, want) {
					t.Errorf("blocks lack %q:\n%s", want, s)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkGoroutines(t)
			srv, got := webhookServer(t, secret, http.StatusNoContent)
			w := &review.Webhook{URL: srv.URL, Secret: secret, Format: tt.format, ConsoleURL: "http://127.0.0.1:8080/"}
			if err := w.Notify(context.Background(), sampleReview(), review.KindReviewProposed); err != nil {
				t.Fatalf("Notify: %v", err)
			}
			d := <-got
			if !d.sigOK {
				t.Errorf("signature %q does not verify", d.header.Get("X-Warden-Signature"))
			}
			ts, err := strconv.ParseInt(d.header.Get("X-Warden-Timestamp"), 10, 64)
			if err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
				t.Errorf("timestamp %q", d.header.Get("X-Warden-Timestamp"))
			}
			if ct := d.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if ev := d.header.Get("X-Warden-Event"); ev != review.KindReviewProposed {
				t.Errorf("X-Warden-Event = %q", ev)
			}
			tt.check(t, d.body)
		})
	}
}

// The signature covers the timestamp: the same body under another
// timestamp does not verify.
func TestSignCoversTimestamp(t *testing.T) {
	body := []byte(`{"event":"review.proposed"}`)
	if review.Sign([]byte("k"), "100", body) == review.Sign([]byte("k"), "101", body) {
		t.Error("signature ignores the timestamp")
	}
	if review.Sign([]byte("k"), "100", body) == review.Sign([]byte("j"), "100", body) {
		t.Error("signature ignores the secret")
	}
}

func TestWebhookErrors(t *testing.T) {
	checkGoroutines(t)
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-hang:
		}
	}))
	defer slow.Close()
	defer close(hang)
	redirect := httptest.NewServer(http.RedirectHandler("http://127.0.0.1:1/elsewhere", http.StatusFound))
	defer redirect.Close()
	failing, _ := webhookServer(t, nil, http.StatusBadGateway)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	tests := []struct {
		name       string
		w          *review.Webhook
		wantStatus int
	}{
		{"non-2xx", &review.Webhook{URL: failing.URL}, http.StatusBadGateway},
		{"redirect not followed", &review.Webhook{URL: redirect.URL}, http.StatusFound},
		{"timeout", &review.Webhook{URL: slow.URL, Timeout: 100 * time.Millisecond}, 0},
		{"unreachable", &review.Webhook{URL: closed.URL + "/services/T000/B000/secret-token"}, 0},
		{"bad url", &review.Webhook{URL: "ftp://example.com/x"}, 0},
		{"bad format", &review.Webhook{URL: failing.URL, Format: "teams"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := tt.w.Notify(context.Background(), sampleReview(), review.KindReviewProposed)
			if err == nil {
				t.Fatal("Notify succeeded")
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Notify took %v", d)
			}
			if se, ok := errors.AsType[*review.StatusError](err); ok != (tt.wantStatus != 0) || (ok && se.StatusCode != tt.wantStatus) {
				t.Errorf("error = %v, want status %d", err, tt.wantStatus)
			}
			// A Slack webhook URL is a credential: never in an error.
			if strings.Contains(err.Error(), "secret-token") {
				t.Errorf("error leaks the URL: %v", err)
			}
		})
	}
}
