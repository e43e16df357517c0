# warden — see README.md. Every target installs what it needs.
GO       ?= go
BIN      := bin/warden
FUZZTIME ?= 10s
export PATH := $(PATH):$(shell ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -1)

.PHONY: all build deps test test-go fuzz-short fuzz demo bench hydra kube-apiserver vet clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/warden

deps:
	@scripts/ensure-deps.sh

# Ory Hydra (a real OIDC provider) for the end-to-end identity test; built
# once and cached outside the repository (about 3 minutes cold).
hydra:
	@scripts/build-hydra.sh >/dev/null

# A real kube-apiserver (Kubernetes v1.37.2) for the Kubernetes tests
# (internal/kubetest); built once and cached outside the repository (about
# 5 minutes cold). etcd and kubectl come from `make deps`.
kube-apiserver:
	@scripts/build-kube-apiserver.sh >/dev/null

vet:
	$(GO) vet ./...

# The README's test command: unit, integration and end-to-end tests against
# real PostgreSQL, real clients (psql, pgbench, pgx, kubectl), real OIDC
# issuers and a real kube-apiserver with etcd,
# then short bounded fuzz runs of every decoder.
test: deps hydra kube-apiserver vet
	WARDEN_HYDRA=$$(scripts/build-hydra.sh) \
	WARDEN_KUBE_APISERVER=$$(scripts/build-kube-apiserver.sh) \
	$(GO) test -count=1 -timeout 20m ./...
	$(MAKE) fuzz-short

fuzz-short:
	@scripts/fuzz.sh $(FUZZTIME)

# Longer fuzzing, not in CI: make fuzz FUZZTIME=10m
fuzz:
	@scripts/fuzz.sh $(if $(filter 10s,$(FUZZTIME)),5m,$(FUZZTIME))

# Runs the gateway on embedded defaults (dev issuer, SQLite audit store, a
# throwaway PostgreSQL) and shows allowed and refused statements end to end.
demo: deps build
	$(BIN) demo --tour

bench: build
	@scripts/ensure-deps.sh --bench
	scripts/bench.sh

clean:
	rm -rf bin
