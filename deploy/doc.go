// Package deploy holds how rollout is shipped and run outside a developer's machine: the Kubernetes
// manifests under kubernetes/. Its tests check those files, the release configuration
// (.goreleaser.yaml) and the container image's Dockerfile against the real binary, so that a manifest
// never names an image, a flag, a port or a path that does not exist.
package deploy
