package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func subjects(rs []Revocation) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.Subject)
	}
	return out
}

func TestRevocations(t *testing.T) {
	checkGoroutines(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "warden.db")
	s := openAt(t, path, Options{})

	type step struct {
		op      string // revoke, unrevoke
		subject string
		wantErr error // nil: success
		want    []string
	}
	before := time.Now().UTC().Add(-time.Second)
	for i, st := range []step{
		{"revoke", "agent-1", nil, []string{"agent-1"}},
		{"revoke", "agent-2", nil, []string{"agent-1", "agent-2"}},
		{"revoke", "agent-1", nil, []string{"agent-1", "agent-2"}}, // already revoked: unchanged
		{"unrevoke", "agent-1", nil, []string{"agent-2"}},
		{"unrevoke", "agent-1", ErrNotRevoked, []string{"agent-2"}},
		{"unrevoke", "nobody", ErrNotRevoked, []string{"agent-2"}},
		{"revoke", "agent-1", nil, []string{"agent-2", "agent-1"}}, // revoked again, later
	} {
		var err error
		switch st.op {
		case "revoke":
			err = s.Revoke(ctx, st.subject, "admin@example.com", fmt.Sprintf("step %d", i))
		case "unrevoke":
			err = s.Unrevoke(ctx, st.subject, "admin@example.com")
		}
		if (st.wantErr == nil) != (err == nil) || (st.wantErr != nil && !errors.Is(err, st.wantErr)) {
			t.Fatalf("step %d: %s %s = %v, want %v", i, st.op, st.subject, err, st.wantErr)
		}
		got, err := s.Revocations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(subjects(got), st.want) {
			t.Fatalf("step %d: revoked %v, want %v", i, subjects(got), st.want)
		}
	}

	got, err := s.Revocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := got[0] // agent-2, revoked once at step 1
	if r.By != "admin@example.com" || r.Reason != "step 1" || r.Time.Before(before) || r.Time.After(time.Now()) || r.Time.Location() != time.UTC {
		t.Fatalf("revocation = %+v", r)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"subject", "by", "reason", "time"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON has no %q: %s", k, b)
		}
	}

	// The history is kept: who lifted agent-1's first revocation.
	var liftedBy string
	if err := rawDB(t, path).QueryRow(`SELECT lifted_by FROM revocations WHERE subject = 'agent-1' AND lifted_at IS NOT NULL`).Scan(&liftedBy); err != nil || liftedBy != "admin@example.com" {
		t.Fatalf("lifted_by = %q, %v", liftedBy, err)
	}

	// Revocations survive a restart, and do not touch the audit chain.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, "agent-3", "x", "y"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Revoke after Close = %v, want ErrClosed", err)
	}
	if err := s.Unrevoke(ctx, "agent-2", "x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Unrevoke after Close = %v, want ErrClosed", err)
	}
	s2 := openAt(t, path, Options{})
	again, err := s2.Revocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again, got) {
		t.Fatalf("after restart %+v, want %+v", again, got)
	}
	mustVerify(t, s2, 0)
}

func TestRevokeInvalid(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	if err := s.Revoke(ctx, "", "admin", "why"); err == nil {
		t.Fatal("Revoke accepted an empty subject")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Revoke(cctx, "agent-1", "admin", "why"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Revoke(cancelled) = %v", err)
	}
	if got, err := s.Revocations(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Revocations = %v, %v", got, err)
	}
}

// TestRevokeWhileRecording: revocations share the writer with audit
// commits, and neither disturbs the other.
func TestRevokeWhileRecording(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	done := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			if err := s.Record(ctx, testEvent(i)); err != nil {
				errs <- err
				return
			}
		}
	}()
	for i := range 50 {
		sub := string(rune('a' + i%26))
		if err := s.Revoke(ctx, sub, "admin", ""); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := s.Unrevoke(ctx, sub, "admin"); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(done)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if _, bad, err := s.Verify(ctx); err != nil || bad != 0 {
		t.Fatalf("Verify: %d, %v", bad, err)
	}
}
