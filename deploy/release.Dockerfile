# The released rollout image, built by GoReleaser (dockers_v2 in .goreleaser.yaml) from the binary it
# already compiled and stamped: nothing is compiled here. The build context holds linux/amd64/rollout
# and linux/arm64/rollout; buildx sets TARGETPLATFORM to pick the right one. To build an image from a
# clone instead, `docker build .` uses the Dockerfile at the root, which compiles the same binary in a
# build stage onto the same final stage as this one.
#
# distroless/static: no shell, no package manager, no libc (the binary is static, CGO_ENABLED=0),
# but CA certificates (GitHub, Prometheus, PostgreSQL over TLS), tzdata and an /etc/passwd naming the
# nonroot user (uid 65532), so `rollout run` needs nothing else. scratch would need the certificates
# and the passwd entry copied in by hand.
FROM gcr.io/distroless/static-debian12:nonroot

ARG TARGETPLATFORM
COPY $TARGETPLATFORM/rollout /usr/local/bin/rollout

USER 65532:65532
# The daemon's /healthz and /metrics (deploy/kubernetes/ sets --listen 0.0.0.0:9090).
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/rollout"]
CMD ["run", "--listen", "0.0.0.0:9090"]
