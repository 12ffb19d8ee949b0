# syntax=docker/dockerfile:1
#
# The codedeploy-exporter image: a release build in the official Rust image, then
# the binary alone on distroless/cc (glibc and libgcc, no shell, no package
# manager), running as the distroless `nonroot` user (65532).
#
#   docker build --build-arg REVISION="$(git rev-parse --short=12 HEAD)" -t codedeploy-exporter .
#   docker run -p 10034:10034 -v codedeploy-data:/data codedeploy-exporter            # serve
#   docker run -p 10034:10034 codedeploy-exporter demo --web.listen-address 0.0.0.0:10034
#
# `.git` is not in the build context (.dockerignore): REVISION gives the git
# revision to `--version` and `codedeploy_exporter_build_info` (build.rs reads it
# from CODEDEPLOY_EXPORTER_REVISION; `unknown` without it).

ARG RUST_VERSION=1.95.0

FROM rust:${RUST_VERSION}-bookworm AS build
ARG REVISION=unknown
ENV CODEDEPLOY_EXPORTER_REVISION=${REVISION}
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY benches ./benches
# The registry and target directories are cache mounts, so a rebuild after a
# source change reuses the compiled dependencies; the binary is copied out of
# the mount to a path the next stage can read.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin codedeploy-exporter \
    && install -D -m 0755 target/release/codedeploy-exporter /out/codedeploy-exporter \
    && install -d -m 0750 /out/data

FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="codedeploy-exporter" \
      org.opencontainers.image.description="Prometheus exporter for AWS CodeDeploy: deployment SLIs and DORA metrics from deployment lifecycle events" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/codedeploy-exporter/codedeploy-exporter" \
      org.opencontainers.image.documentation="https://github.com/codedeploy-exporter/codedeploy-exporter/blob/main/docs/operations.md" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=build /out/codedeploy-exporter /usr/local/bin/codedeploy-exporter
# The store's directory, owned by the user the exporter runs as, so a fresh
# named volume mounted here is writable.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
VOLUME ["/data"]
EXPOSE 10034
ENTRYPOINT ["/usr/local/bin/codedeploy-exporter"]
CMD ["serve", "--storage.path", "/data"]
