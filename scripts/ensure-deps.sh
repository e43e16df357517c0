#!/usr/bin/env bash
# Installs what warden's tests, demo and benchmarks need on a fresh Debian
# machine with Go: PostgreSQL's server binaries and clients, etcd and kubectl
# for the Kubernetes tests (kube-apiserver itself is built by
# scripts/build-kube-apiserver.sh), and PgBouncer with --bench. Idempotent:
# installs only what is missing.
set -euo pipefail
need=()
have_pg_server() {
  command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}
have_pg_server || need+=(postgresql postgresql-contrib)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
command -v pgbench >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1 || need+=(postgresql-contrib)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
# Debian's kubectl (kubernetes-client) is old (1.20: exec over SPDY only);
# the CI image has kubectl v1.32, which speaks WebSocket first.
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
if [[ "${1:-}" == "--bench" ]]; then
  command -v pgbouncer >/dev/null 2>&1 || need+=(pgbouncer)
fi
if ((${#need[@]})); then
  echo "ensure-deps: installing ${need[*]}" >&2
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  # Debian's postgresql package starts a cluster only under systemd; warden
  # never uses it, it starts its own throwaway servers.
fi
# PostgreSQL refuses to run as root: the harness runs it as `postgres`.
if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
  useradd --system --home /var/lib/postgresql --shell /bin/bash postgres
fi
