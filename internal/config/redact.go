package config

import (
	"net/url"
	"strings"
)

// RedactedText is the placeholder that replaces secrets in Config.Redacted.
const RedactedText = "REDACTED"

// Redacted returns a copy of c that is safe to print or log: target
// passwords, the password of a postgres:// store, the webhook secret and
// the path, query and user of the webhook URL (a chat webhook's URL is
// its credential) and masking.hash_key are replaced by RedactedText. Targets is copied; the
// other slices are shared with c, so treat the copy as read-only.
func (c *Config) Redacted() *Config {
	r := *c
	r.Targets = make([]Target, len(c.Targets))
	copy(r.Targets, c.Targets)
	for i := range r.Targets {
		if r.Targets[i].Password != "" {
			r.Targets[i].Password = RedactedText
		}
	}
	if strings.HasPrefix(r.Store, "postgres") {
		if u, err := url.Parse(r.Store); err == nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), RedactedText)
				r.Store = u.String()
			}
		} else {
			r.Store = "postgres://" + RedactedText
		}
	}
	if r.Reviews.Webhook.Secret != "" {
		r.Reviews.Webhook.Secret = RedactedText
	}
	r.Reviews.Webhook.URL = redactWebhookURL(r.Reviews.Webhook.URL)
	if r.Masking.HashKey != "" {
		r.Masking.HashKey = RedactedText
	}
	return &r
}

// redactWebhookURL keeps the scheme and host of a webhook URL, which say
// where notifications go, and hides the rest.
func redactWebhookURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return RedactedText
	}
	if u.User == nil && u.RawQuery == "" && u.Fragment == "" && (u.Path == "" || u.Path == "/") {
		return raw
	}
	return u.Scheme + "://" + u.Host + "/" + RedactedText
}
