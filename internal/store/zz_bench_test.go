package store

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestZZPruneTiming(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	old := time.Now().Add(-48 * time.Hour)
	var wg sync.WaitGroup
	for w := range 40 {
		wg.Go(func() {
			for i := range 300 {
				ev := testEvent(w*300 + i)
				ev.Time = old
				s.Record(ctx, ev)
			}
		})
	}
	wg.Wait()
	for _, lim := range []int64{1000, 10000} {
		start := time.Now()
		n, err := s.prune(ctx, time.Now().Add(-time.Hour), lim)
		t.Logf("limit %d: %d deleted in %v (%v)", lim, n, time.Since(start), err)
	}
}
