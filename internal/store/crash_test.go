package store

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// envCrashDB tells a re-executed test binary to act as the crashing child.
const (
	envCrashDB = "WARDEN_STORE_CRASH_CHILD_DB"
	envCrashOS = "WARDEN_STORE_CRASH_CHILD_OS" // set: the child uses ProcessCrashOnly
)

// TestCrashChild is not a test on its own: TestCrashAcknowledgedSurvive
// re-executes the test binary to run it as a child process, which records
// events from several goroutines and prints "ack <id>" for each one Record
// acknowledged, until it is killed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(envCrashDB)
	if path == "" {
		t.Skip("run by TestCrashAcknowledgedSurvive")
	}
	s, err := OpenSQLite(context.Background(), path, Options{ProcessCrashOnly: os.Getenv(envCrashOS) != ""})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open:", err)
		os.Exit(3)
	}
	var mu sync.Mutex // one write(2) per line, never interleaved
	for g := range 16 {
		go func() {
			for i := 0; ; i++ {
				ev := testEvent(g*1_000_000 + i)
				if err := s.Record(context.Background(), ev); err != nil {
					fmt.Fprintln(os.Stderr, "child: record:", err)
					os.Exit(4)
				}
				mu.Lock()
				os.Stdout.WriteString("ack " + strconv.FormatInt(ev.ID, 10) + "\n")
				mu.Unlock()
			}
		}()
	}
	// The parent kills us long before this; the limit only keeps an
	// orphaned child from running forever if the parent dies first.
	time.Sleep(60 * time.Second)
	os.Exit(5)
}

// TestCrashAcknowledgedSurvive kills a process that is recording events
// with SIGKILL, several times over the same database, and checks that
// every event the process acknowledged is in the file afterwards and that
// the chain still verifies and continues. SIGKILL models a crash of
// warden, not of the machine: the fsync that protects against power loss
// (synchronous=FULL) cannot be exercised from a test.
func TestCrashAcknowledgedSurvive(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	for _, osOnly := range []bool{false, true} {
		name := "fsync"
		if osOnly {
			name = "os"
			t.Setenv(envCrashOS, "1")
		}
		t.Run(name, func(t *testing.T) { crashRounds(t, osOnly) })
	}
}

func crashRounds(t *testing.T, osOnly bool) {
	path := filepath.Join(t.TempDir(), "crash.db")
	acked := map[int64]bool{}
	// Kill after different amounts of progress, so the kill lands at
	// different points of the write path.
	for round, killAfter := range []int{1, 300, 2000, 5000} {
		ids := runCrashChild(t, path, killAfter)
		for _, id := range ids {
			acked[id] = true
		}
		t.Logf("round %d: child acknowledged %d events before SIGKILL", round, len(ids))
		if len(ids) < killAfter {
			t.Fatalf("round %d: child acknowledged only %d events", round, len(ids))
		}

		// Recovery: open as warden would after a restart.
		s, err := OpenSQLite(context.Background(), path, Options{ProcessCrashOnly: osOnly})
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		stored := map[int64]bool{}
		for _, id := range storedIDs(t, s.rdb) {
			stored[id] = true
		}
		var missing []int64
		for id := range acked {
			if !stored[id] {
				missing = append(missing, id)
			}
		}
		checked, bad, verr := s.Verify(context.Background())
		if cerr := s.Close(); cerr != nil {
			t.Fatal(cerr)
		}
		if len(missing) > 0 {
			t.Fatalf("round %d: %d acknowledged events lost, e.g. %v", round, len(missing), missing[:min(5, len(missing))])
		}
		if verr != nil || bad != 0 || checked != int64(len(stored)) {
			t.Fatalf("round %d: Verify = (%d, %d, %v) over %d stored", round, checked, bad, verr, len(stored))
		}
		t.Logf("round %d: %d acknowledged in total, %d stored, chain verifies", round, len(acked), len(stored))
	}
}

// runCrashChild starts the child on path, SIGKILLs it once it has
// acknowledged killAfter events, and returns every id it acknowledged
// (including lines already in the pipe when the kill landed).
func runCrashChild(t *testing.T, path string, killAfter int) []int64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envCrashDB+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill := func() {
		if !killed {
			killed = true
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Errorf("kill: %v", err)
			}
		}
	}
	// Safety net: a child that hangs before acknowledging enough.
	timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Signal(syscall.SIGKILL) })
	defer timer.Stop()

	var ids []int64
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "ack ")
		if !ok {
			continue // test framework chatter
		}
		id, err := strconv.ParseInt(rest, 10, 64)
		if err != nil {
			t.Fatalf("child printed %q", line)
		}
		ids = append(ids, id)
		if len(ids) >= killAfter {
			kill()
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v\nstderr:\n%s", err, stderr.String())
	}
	return ids
}
