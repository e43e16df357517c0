package postgres

import (
	"sort"
	"time"
)

// SessionInfo describes a live client session, for operators.
type SessionInfo struct {
	ID       string    `json:"id"`
	Protocol string    `json:"protocol"`
	Target   string    `json:"target"`
	Subject  string    `json:"subject"`
	Issuer   string    `json:"issuer"`
	Groups   []string  `json:"groups"`
	TokenID  string    `json:"token_id,omitempty"`
	Client   string    `json:"client"`
	Started  time.Time `json:"started"`
	Expires  time.Time `json:"token_expires"`
}

// Sessions lists the live sessions, oldest first.
func (s *Server) Sessions() []SessionInfo {
	s.mu.Lock()
	out := make([]SessionInfo, 0, len(s.sessions))
	for _, ss := range s.sessions {
		if !ss.killed.Load() {
			out = append(out, ss.info())
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}

func (ss *session) info() SessionInfo {
	return SessionInfo{
		ID: ss.id, Protocol: "postgres", Target: ss.target.Name,
		Subject: ss.principal.Subject, Issuer: ss.principal.Issuer, Groups: ss.principal.Groups,
		TokenID: ss.principal.TokenID, Client: ss.evBase.Client, Started: ss.evBase.Time, Expires: ss.principal.Expiry,
	}
}

// Terminate closes the session with the given id, telling the client why
// with a FATAL error (SQLSTATE 57P01, as for pg_terminate_backend). It
// reports whether such a session was live.
func (s *Server) Terminate(id, reason string) bool {
	s.mu.Lock()
	var target *session
	for _, ss := range s.sessions {
		if ss.id == id && !ss.killed.Load() {
			target = ss
			break
		}
	}
	s.mu.Unlock()
	if target == nil {
		return false
	}
	target.terminate("57P01", "warden: terminating connection: "+reason, reason)
	return true
}

// TerminateSubject closes every session of a subject (e.g. on revocation)
// and returns how many it closed.
func (s *Server) TerminateSubject(subject, reason string) int {
	s.mu.Lock()
	var victims []*session
	for _, ss := range s.sessions {
		if ss.principal.Subject == subject && !ss.killed.Load() {
			victims = append(victims, ss)
		}
	}
	s.mu.Unlock()
	for _, ss := range victims {
		ss.terminate("57P01", "warden: terminating connection: "+reason, reason)
	}
	return len(victims)
}

// terminate sends a FATAL error to the client and closes both sides. The
// error lands between two relayed messages (writes to the client are
// serialized), so the client reads a well-formed stream.
func (ss *session) terminate(code, msg, reason string) {
	ss.endMu.Lock()
	if ss.endReason == "" {
		ss.endReason = reason
	}
	ss.endMu.Unlock()
	ss.fatal(code, msg)
	ss.kill()
}

// watchExpiry closes the session when its token expires: a token's
// lifetime bounds the session it opened, not just the next login. It
// returns a func that stops the watch.
func (ss *session) watchExpiry() (stop func() bool) {
	exp := ss.principal.Expiry
	if exp.IsZero() {
		return func() bool { return true }
	}
	t := time.AfterFunc(time.Until(exp), func() {
		ss.terminate("28000", "warden: terminating connection: the access token expired; reconnect with a fresh token", "token expired")
	})
	return t.Stop
}
