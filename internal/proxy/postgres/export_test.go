package postgres

import "time"

// Hooks for the external tests (package postgres_test); compiled only
// into the test binary.

// MaskCounts returns, summed over the live sessions of s, how many
// Describes warden injected before Executes and how many Executes it
// relayed as mask-free, without one.
func MaskCounts(s *Server) (describes, free int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ss := range s.sessions {
		if ss.me != nil {
			describes += ss.me.describes.Load()
			free += ss.me.free.Load()
		}
	}
	return describes, free
}

// ExpireCatalog makes every relation the catalog of target has cached
// due for reloading, as the passing of its TTL would.
func ExpireCatalog(s *Server, target string) {
	c := s.cfg.Targets[target].catalog()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.rels {
		r.loaded = time.Time{}
	}
	for _, r := range c.byName {
		r.loaded = time.Time{}
	}
	for k := range c.missing {
		c.missing[k] = time.Time{}
	}
}
