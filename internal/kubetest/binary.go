package kubetest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// EnvAPIServer names the environment variable that points at a
// kube-apiserver binary. `make test` sets it from
// scripts/build-kube-apiserver.sh.
const EnvAPIServer = "WARDEN_KUBE_APISERVER"

// missingHint is the one sentence every "binary not found" failure ends
// with, so that a developer knows the single command that fixes it.
const missingHint = "run `make kube-apiserver` (scripts/build-kube-apiserver.sh, about 5 minutes cold) or set " + EnvAPIServer

// APIServerBinary returns the path of the kube-apiserver binary: the one
// named by WARDEN_KUBE_APISERVER, else the cache path that
// scripts/build-kube-apiserver.sh writes
// (${XDG_CACHE_HOME:-~/.cache}/warden/kube/kube-apiserver).
//
// A missing binary fails the test with a message naming
// `make kube-apiserver`: the Kubernetes tests are part of the suite and must
// not pass by skipping. Only under `go test -short` is the test skipped.
func APIServerBinary(t testing.TB) string {
	t.Helper()
	p, err := apiServerBinary()
	if err != nil {
		if testing.Short() {
			t.Skipf("kubetest: %v (skipped in -short mode)", err)
		}
		t.Fatalf("kubetest: %v", err)
	}
	return p
}

func apiServerBinary() (string, error) {
	if p := os.Getenv(EnvAPIServer); p != "" {
		if err := executable(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w; %s", EnvAPIServer, p, err, missingHint)
		}
		return p, nil
	}
	p, err := cachedAPIServerPath()
	if err != nil {
		return "", fmt.Errorf("kube-apiserver not found (%w); %s", err, missingHint)
	}
	if err := executable(p); err != nil {
		return "", fmt.Errorf("kube-apiserver not found at %s; %s", p, missingHint)
	}
	return p, nil
}

// cachedAPIServerPath mirrors the default of scripts/build-kube-apiserver.sh.
func cachedAPIServerPath() (string, error) {
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "warden", "kube", "kube-apiserver"), nil
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}

// etcdBinary finds Debian's etcd (package etcd-server, installed by
// scripts/ensure-deps.sh).
func etcdBinary() (string, error) {
	p, err := exec.LookPath("etcd")
	if err != nil {
		return "", fmt.Errorf("etcd not found in PATH (%w); run `make deps` (scripts/ensure-deps.sh installs etcd-server)", err)
	}
	return p, nil
}

// KubectlBinary returns the path of kubectl, failing the test (skipping
// under -short) when it is not installed.
func KubectlBinary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("kubectl")
	if err != nil {
		if testing.Short() {
			t.Skipf("kubetest: kubectl not found (skipped in -short mode)")
		}
		t.Fatalf("kubetest: kubectl not found in PATH: %v", err)
	}
	return p
}
