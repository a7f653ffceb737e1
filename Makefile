# Shortcuts; each target is what the README says to run.
.PHONY: test demo build bench

test: ## the whole suite, installing the servers it needs
	bash .ci/test

demo: ## the whole loop on a throw-away local repository
	go run ./cmd/rollout demo

build:
	go build -o bin/rollout ./cmd/rollout

bench:
	go test -run '^$$' -bench . -benchmem ./...
