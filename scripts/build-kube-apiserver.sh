#!/usr/bin/env bash
# build-kube-apiserver.sh builds a real kube-apiserver (Kubernetes v1.37.2)
# for warden's Kubernetes end-to-end tests. No Debian package ships it; it
# builds from the k8s.io/kubernetes module and runs against Debian's etcd.
#
# The binary is cached outside the repository, by default at
#   ${XDG_CACHE_HOME:-$HOME/.cache}/warden/kube/kube-apiserver
# and the build is skipped when it already exists. Override the location with
# WARDEN_KUBE_APISERVER=/path/to/kube-apiserver. Prints the path on stdout.
# A cold build takes about five minutes (recipe: ../shared/ENVIRONMENT.md).
set -euo pipefail

KUBE_VERSION=v1.37.2
STAGING_VERSION=v0.37.2

out="${WARDEN_KUBE_APISERVER:-${XDG_CACHE_HOME:-$HOME/.cache}/warden/kube/kube-apiserver}"

if [[ -x "$out" ]]; then
	echo "$out"
	exit 0
fi

mkdir -p "$(dirname "$out")"
work="$(mktemp -d "$(dirname "$out")/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

(
	cd "$work"
	export GOWORK=off GOFLAGS=-mod=mod
	go mod init example.invalid/kas >&2
	gomod="$(go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" |
		python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')"
	# k8s.io/kubernetes replaces its staging modules with local paths; point
	# each at its published version instead.
	for m in $(grep '=> ./staging' "$gomod" | awk '{print $1}'); do
		go mod edit "-replace=$m=$m@${STAGING_VERSION}"
	done
	go mod edit "-require=k8s.io/kubernetes@${KUBE_VERSION}"
	printf '//go:build tools\npackage tools\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver"\n' >tools.go
	go mod tidy >&2
	go build -o kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver >&2
)

mv "$work/kube-apiserver" "$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
