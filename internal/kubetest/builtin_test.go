package kubetest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBuiltin(t *testing.T) {
	for _, tc := range []struct {
		argv           []string
		stdin          string
		stdout, stderr string
		code           int
	}{
		{argv: []string{"echo", "a", "b"}, stdout: "a b\n"},
		{argv: []string{"echo"}, stdout: "\n"},
		{argv: []string{"echoerr", "oops"}, stderr: "oops\n"},
		{argv: []string{"cat"}, stdin: "x\ny", stdout: "x\ny"},
		{argv: []string{"env"}, stdout: "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nHOSTNAME=web\n"},
		{argv: []string{"hostname"}, stdout: "web\n"},
		{argv: []string{"true"}},
		{argv: []string{"false"}, code: 1},
		{argv: []string{"exit", "42"}, code: 42},
		{argv: []string{"exit", "x"}, stderr: "exit: x: numeric argument required\n", code: 2},
		{argv: []string{"sleep", "0.01"}},
		{argv: []string{"sh", "-c", "rm -rf /"}, stderr: "sh: command not found\n", code: 127},
	} {
		t.Run(strings.Join(tc.argv, " "), func(t *testing.T) {
			var out, errw strings.Builder
			code := builtin(context.Background(), "web", tc.argv, strings.NewReader(tc.stdin), &out, &errw)
			if code != tc.code || out.String() != tc.stdout || errw.String() != tc.stderr {
				t.Errorf("builtin(%q) = %d, stdout %q, stderr %q; want %d, %q, %q",
					tc.argv, code, out.String(), errw.String(), tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

func TestBuiltinSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	if code := builtin(ctx, "web", []string{"sleep", "30"}, nil, nil, nil); code != 130 {
		t.Errorf("sleep cancelled: exit %d, want 130", code)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("sleep cancelled after %s", d)
	}
}

func TestAPIServerBinaryMessage(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "kube-apiserver")
	if err := os.WriteFile(notExec, []byte("#!/bin/false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{filepath.Join(t.TempDir(), "missing"), notExec} {
		t.Setenv(EnvAPIServer, env)
		_, err := apiServerBinary()
		if err == nil || !strings.Contains(err.Error(), "make kube-apiserver") {
			t.Errorf("%s=%s: err %v, want one naming `make kube-apiserver`", EnvAPIServer, env, err)
		}
	}
	t.Setenv(EnvAPIServer, "")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	if _, err := apiServerBinary(); err == nil || !strings.Contains(err.Error(), "make kube-apiserver") {
		t.Errorf("empty cache: err %v, want one naming `make kube-apiserver`", err)
	}
}
