// Package metrics defines warden's Prometheus metrics (all named warden_*)
// in one place, so every protocol reports the same names and labels. It
// knows nothing about protocols; callers pass label values. A nil *Metrics
// is valid and records nothing, so tests and tools can leave it out.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds warden's collectors.
type Metrics struct {
	reg *prometheus.Registry

	requests      *prometheus.CounterVec   // protocol, target, decision
	decisionTime  *prometheus.HistogramVec // protocol
	statementTime *prometheus.HistogramVec // protocol, target
	sessions      *prometheus.GaugeVec     // protocol, target
	logins        *prometheus.CounterVec   // protocol, result
	tokenFailures *prometheus.CounterVec   // reason
	auditWrite    prometheus.Histogram
	auditFailures prometheus.Counter
}

// New registers warden's metrics, plus the Go runtime and process
// collectors, in a new registry. queueDepth, if not nil, is sampled for
// warden_audit_queue_depth at scrape time.
func New(queueDepth func() float64) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_requests_total",
		Help: "Requests (SQL statements, API calls) decided, by protocol, target and decision.",
	}, []string{"protocol", "target", "decision"})
	m.decisionTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "warden_decision_duration_seconds",
		Help:    "Time to decide a request: parse (or cache hit) and policy evaluation.",
		Buckets: []float64{1e-6, 5e-6, 2e-5, 1e-4, 5e-4, 2e-3, 1e-2, 5e-2},
	}, []string{"protocol"})
	m.statementTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "warden_request_duration_seconds",
		Help:    "Time from forwarding an allowed request upstream to its completion.",
		Buckets: prometheus.ExponentialBuckets(1e-4, 4, 10),
	}, []string{"protocol", "target"})
	m.sessions = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "warden_sessions_active",
		Help: "Open client sessions.",
	}, []string{"protocol", "target"})
	m.logins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_logins_total",
		Help: "Session start attempts by result (ok, denied, failed).",
	}, []string{"protocol", "result"})
	m.tokenFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_token_verification_failures_total",
		Help: "Tokens refused, by reason (expired, bad_signature, bad_audience, revoked, ...).",
	}, []string{"reason"})
	m.auditWrite = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "warden_audit_write_duration_seconds",
		Help:    "Time to commit one group of audit records.",
		Buckets: prometheus.ExponentialBuckets(5e-5, 3, 10),
	})
	m.auditFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "warden_audit_write_failures_total",
		Help: "Audit commits that failed; requests depending on them were refused.",
	})
	m.reg.MustRegister(m.requests, m.decisionTime, m.statementTime, m.sessions, m.logins, m.tokenFailures, m.auditWrite, m.auditFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if queueDepth != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "warden_audit_queue_depth",
			Help: "Audit records waiting for the writer.",
		}, queueDepth))
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Target holds the pre-resolved collectors for one protocol and target,
// so the per-request path does no label lookups.
type Target struct {
	allow, deny prometheus.Counter
	decide      prometheus.Observer
	duration    prometheus.Observer
	sessions    prometheus.Gauge
}

// For returns the collectors of one protocol and target. Cheap enough per
// session; cache it for longer.
func (m *Metrics) For(protocol, target string) *Target {
	if m == nil {
		return nil
	}
	return &Target{
		allow:    m.requests.WithLabelValues(protocol, target, "allow"),
		deny:     m.requests.WithLabelValues(protocol, target, "deny"),
		decide:   m.decisionTime.WithLabelValues(protocol),
		duration: m.statementTime.WithLabelValues(protocol, target),
		sessions: m.sessions.WithLabelValues(protocol, target),
	}
}

// Decided counts one decision and how long it took.
func (t *Target) Decided(allowed bool, took time.Duration) {
	if t == nil {
		return
	}
	if allowed {
		t.allow.Inc()
	} else {
		t.deny.Inc()
	}
	t.decide.Observe(took.Seconds())
}

// Completed records an allowed request's duration.
func (t *Target) Completed(took time.Duration) {
	if t != nil {
		t.duration.Observe(took.Seconds())
	}
}

// SessionStarted and SessionEnded track active sessions.
func (t *Target) SessionStarted() {
	if t != nil {
		t.sessions.Inc()
	}
}

func (t *Target) SessionEnded() {
	if t != nil {
		t.sessions.Dec()
	}
}

// Login counts a session start attempt: result is "ok", "denied" (policy
// or target) or "failed" (token, protocol, upstream).
func (m *Metrics) Login(protocol, result string) {
	if m != nil {
		m.logins.WithLabelValues(protocol, result).Inc()
	}
}

// TokenRejected counts a refused token by reason.
func (m *Metrics) TokenRejected(reason string) {
	if m != nil {
		m.tokenFailures.WithLabelValues(reason).Inc()
	}
}

// AuditCommit records one audit commit attempt.
func (m *Metrics) AuditCommit(events int, took time.Duration, err error) {
	if m == nil {
		return
	}
	m.auditWrite.Observe(took.Seconds())
	if err != nil {
		m.auditFailures.Inc()
	}
}
