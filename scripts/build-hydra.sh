#!/usr/bin/env bash
# build-hydra.sh builds Ory Hydra v2.3.0 (a real OpenID Connect provider with
# the client_credentials grant) for warden's end-to-end identity tests.
#
# The binary is cached outside the repository, by default at
#   ${XDG_CACHE_HOME:-$HOME/.cache}/warden/hydra/hydra
# and the build is skipped when it already exists. Override the location with
# WARDEN_HYDRA=/path/to/hydra. The script prints the binary's path on stdout.
#
# Recipe from /work/shared/ENVIRONMENT.md: Hydra is built as a Go tool module;
# gobuffalo/pop must be replaced by Ory's fork or the module does not resolve.
# A cold build takes about three minutes.
set -euo pipefail

HYDRA_VERSION=v2.3.0
POP_REPLACE=github.com/ory/pop/v6@v6.2.1-0.20241121111754-e5dfc0f3344b

out="${WARDEN_HYDRA:-${XDG_CACHE_HOME:-$HOME/.cache}/warden/hydra/hydra}"

if [[ -x "$out" ]]; then
	echo "$out"
	exit 0
fi

mkdir -p "$(dirname "$out")"
work="$(mktemp -d "$(dirname "$out")/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

(
	cd "$work"
	# Keep the tool module independent of any enclosing workspace.
	export GOWORK=off GOFLAGS=-mod=mod
	go mod init example.invalid/hydratool >&2
	go get -tool "github.com/ory/hydra/v2@${HYDRA_VERSION}" >&2
	go mod edit -replace "github.com/gobuffalo/pop/v6=${POP_REPLACE}"
	go mod tidy >&2
	go build -tags sqlite,sqlite_omit_load_extension -o hydra github.com/ory/hydra/v2 >&2
)

# Rename into place so a half-written binary is never picked up.
mv "$work/hydra" "$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
