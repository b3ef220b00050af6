# Multi-stage build: a release binary in a small, non-root runtime image.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto proto
COPY src src
RUN cargo build --release --locked --bin stanchion

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /data stanchion \
 && mkdir -p /data && chown stanchion /data
COPY --from=build /src/target/release/stanchion /usr/local/bin/stanchion
USER stanchion
WORKDIR /data
VOLUME ["/data"]
ENV STANCHION_DIR=/data
ENTRYPOINT ["/usr/local/bin/stanchion"]
