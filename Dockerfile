# The images the manifests run, one target each:
#   docker build --target berth-controller -t ghcr.io/berth-io/berth-controller:<tag> .
#   docker build --target berth-cni        -t ghcr.io/berth-io/berth-cni:<tag> .
#   docker build --target berth-sriov-dp   -t ghcr.io/berth-io/berth-sriov-dp:<tag> .
# Every binary is static (CGO off), so the images need no libc.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/ ./cmd/...

# The admission webhook and every controller (Deployment berth-controller).
FROM gcr.io/distroless/static-debian12:nonroot AS berth-controller
COPY --from=build /out/berth-controller /usr/local/bin/berth-controller
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/berth-controller"]

# The CNI plugins and their installer (DaemonSet berth-cni): the installer
# copies the plugins from /usr/local/lib/berth/cni into the host's
# /opt/cni/bin and keeps their kubeconfig current.
FROM gcr.io/distroless/static-debian12 AS berth-cni
COPY --from=build /out/berth-ipam /out/berth-coordinator /out/berth-ifacer /usr/local/lib/berth/cni/
COPY --from=build /out/berth-cni-install /usr/local/bin/berth-cni-install
ENTRYPOINT ["/usr/local/bin/berth-cni-install"]

# The SR-IOV device plugin (DaemonSet berth-sriov-dp).
FROM gcr.io/distroless/static-debian12 AS berth-sriov-dp
COPY --from=build /out/berth-sriov-dp /usr/local/bin/berth-sriov-dp
ENTRYPOINT ["/usr/local/bin/berth-sriov-dp"]
