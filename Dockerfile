# The rollout image built from a clone: `docker build -t rollout .` (or with --build-arg VERSION=1.4.0
# to stamp a version). Two stages: the build stage compiles the static binary with the Go that go.mod
# names; the final stage is the one the release ships (deploy/release.Dockerfile, which GoReleaser
# builds from its own compiled binaries): distroless/static, user 65532, no shell.

# ---- build: the module's Go, CGO off (a static binary for distroless), the module cache first so a
# change of source alone does not download again.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o bin/rollout ./cmd/rollout

# ---- the image: CA certificates, tzdata and an /etc/passwd naming the nonroot user (uid 65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/bin/rollout /usr/local/bin/rollout
USER 65532:65532
# The daemon's /healthz and /metrics (deploy/kubernetes/ sets --listen 0.0.0.0:9090).
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/rollout"]
CMD ["run", "--listen", "0.0.0.0:9090"]
