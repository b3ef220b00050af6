# stanchion: a release binary in a small, non-root runtime image.
#
#   docker build -t stanchion .
#   docker run -e STANCHION_NATS_SERVER=nats://nats:4222 -v stan-data:/data -p 8222:8222 stanchion
#
# Configuration is by environment (STANCHION_*), flags after the image name
# (NSS spellings: -ns, -cid, -m ...) or an NSS config file (-sc FILE).
# deploy/ has docker run, compose and Kubernetes examples; tests/deploy.rs
# checks this file's wiring and scripts/lint-deploy.sh runs hadolint on it.

# ---------------------------------------------------------------- build
# Pinned to the project's toolchain (rustc 1.95). Bookworm, like the runtime
# stage below, so the binary links against the same glibc it runs with.
FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /src

# Dependency layer: the manifests, build script and .proto files with stub
# sources, so that the dependencies are compiled once and this layer is
# reused for as long as Cargo.toml, Cargo.lock, build.rs and proto/ do not
# change. Every [[bin]] in Cargo.toml needs a file for cargo to read the
# manifest, hence the bench stub.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto proto
RUN mkdir -p src/bin \
 && echo 'fn main() {}' > src/main.rs \
 && echo 'fn main() {}' > src/bin/bench.rs \
 && touch src/lib.rs \
 && cargo build --release --locked --bin stanchion \
 && rm -rf src

# The real sources. COPY keeps the files' own modification times, which can
# be older than the stub build: touch the crate roots so cargo rebuilds them.
COPY src src
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin stanchion \
 && /src/target/release/stanchion --version

# -------------------------------------------------------------- runtime
# An exact, dated tag: rebuild with a newer one to pick up Debian's fixes.
FROM debian:bookworm-20260803-slim

# A fixed, numeric UID/GID (10001), so that Kubernetes' runAsNonRoot can
# verify it and volumes can be prepared for it (fsGroup: 10001).
RUN groupadd --system --gid 10001 stanchion \
 && useradd --system --no-log-init --uid 10001 --gid 10001 \
      --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin stanchion \
 && mkdir /data \
 && chown 10001:10001 /data \
 && chmod 0750 /data

# TLS to nats-server (tls:// URLs, STANCHION_TLS_CLIENT_*) verifies against
# the system roots unless a CA file is given; the bundle comes from the
# build stage (Debian's ca-certificates), so this stage needs no apt-get.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /src/target/release/stanchion /usr/local/bin/stanchion

# No STANCHION_* variables: the environment would override a config file
# (defaults < file < env < flags). The store is stanchion's default (sled
# in ./data, /data from the working directory /), and monitoring comes from
# CMD below, as in the NSS image: a config file's `store`, `dir` and `http`
# still decide, as they did with NSS.
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt

USER 10001:10001
WORKDIR /
VOLUME ["/data"]

# Monitoring: /healthz, /readyz, /metrics and NSS's /streaming/* endpoints.
# Clients never connect to stanchion: they talk to nats-server (4222).
EXPOSE 8222

# The image has no curl or wget: the binary checks its own /healthz on
# 127.0.0.1 (at STANCHION_HTTP_PORT if set, else 8222) and exits 0 or 1.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/stanchion", "healthcheck"]

# Exec form, no shell and no init: stanchion is PID 1 and receives SIGTERM
# itself. No tini is needed: stanchion installs its own SIGTERM and SIGINT
# handlers (the kernel's default action does not apply to PID 1, but
# handled signals are delivered), shuts down gracefully and exits 0 within
# 10 s, and it spawns no child processes, so there are no zombies to reap.
# `docker run --init` still works if a deployment wants an init anyway.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/stanchion"]
# The NSS image's default arguments: monitoring on 8222. Arguments given to
# `docker run` (or a pod's args) replace them, as with NSS.
CMD ["-m", "8222"]
