# Shortcuts; each target is what the README says to run.
.PHONY: test demo build bench snapshot

test: ## the whole suite, installing the servers it needs
	bash .ci/test

demo: ## the whole loop on a throw-away local repository
	go run ./cmd/rollout demo

build:
	go build -o bin/rollout ./cmd/rollout

bench:
	go test -run '^$$' -bench . -benchmem ./...

# GoReleaser from .ci/install-goreleaser (built from the Go module proxy once, then cached).
GORELEASER ?= $(shell bash .ci/install-goreleaser)
# Without a Docker daemon the image is skipped; the archives and checksums are built all the same.
SNAPSHOT_FLAGS ?= $(shell docker info >/dev/null 2>&1 || echo --skip=docker)

snapshot: ## every release archive and checksums.txt in dist/, nothing published
	$(GORELEASER) release --snapshot --clean $(SNAPSHOT_FLAGS)
