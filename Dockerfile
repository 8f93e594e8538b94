# tapgate container image: the GitHub Action (action.yml builds this file) and
# the Kubernetes Job / Argo Rollouts analysis image.
#
#   docker build -t tapgate --build-arg VERSION=v0.1.0 --build-arg COMMIT=$(git rev-parse --short=12 HEAD) .
#
# One image for both uses; the user is chosen by who runs it:
#   - GitHub container actions run as root (the distroless default), which
#     they need: the workspace and the GITHUB_OUTPUT / GITHUB_STEP_SUMMARY
#     files are mounted owned by the runner's user.
#   - The Kubernetes Job sets securityContext runAsUser/runAsGroup 65532
#     (distroless' "nonroot"), runAsNonRoot and a read-only root filesystem;
#     the binary needs no writable path but the report directory.
#
# Deliberately classic-builder compatible (no BuildKit cache mounts, no
# syntax directive): GitHub builds container actions with whatever builder the
# runner has. Keep the go build line in step with the Makefile's build
# target; gate/ghactions' TestDockerfileMatchesMakefile checks it.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-mod=readonly GOTOOLCHAIN=local
# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
ARG VERSION=dev
ARG COMMIT=
ARG TARGETOS
ARG TARGETARCH
RUN GOOS="${TARGETOS:-linux}" GOARCH="${TARGETARCH:-$(go env GOARCH)}" \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/tapgate ./cmd/tapgate

# static: no libc needed (CGO_ENABLED=0); CA certificates and /tmp included.
FROM gcr.io/distroless/static-debian12
LABEL org.opencontainers.image.title="tapgate" \
      org.opencontainers.image.description="Traffic gate for Linkerd service meshes" \
      org.opencontainers.image.source="https://github.com/tapgate/tapgate" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/tapgate /usr/local/bin/tapgate
ENTRYPOINT ["/usr/local/bin/tapgate"]
CMD ["--help"]
