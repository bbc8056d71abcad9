# Contingency: the four executables in one image. Run one per container (the command picks which).
# Build:  docker build -t contingency .
FROM swift:6.2-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        libpq-dev libarchive-dev libcurl4-openssl-dev libssl-dev libdeflate-dev libzstd-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
# The benchmark's sidecar-load target is declared in Package.swift (never built here): its folder must exist.
COPY bench/SidecarLoad ./bench/SidecarLoad
RUN swift build -c release --static-swift-stdlib \
        --product backup-job --product restore-job --product cleanup-job --product health-sidecar \
        --product contingency-guard \
    && mkdir -p /out && bin="$(swift build -c release --show-bin-path)" \
    && cp "$bin/backup-job" "$bin/restore-job" "$bin/cleanup-job" "$bin/health-sidecar" "$bin/contingency-guard" /out/

FROM debian:bookworm-slim
# pg_dump must be at least the server's major version: install the client matching your server
# (postgresql-client-15 here; PGDG's apt repository has newer ones) or set PG_BIN_DIR.
RUN apt-get update && apt-get install -y --no-install-recommends \
        libpq5 libarchive13 libcurl4 libssl3 libxml2 libdeflate0 libzstd1 postgresql-client-15 ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /nonexistent contingency
COPY --from=build /out/ /usr/local/bin/
USER 10001
VOLUME ["/backups"]
# Every --loop process (whatever role this container plays) touches LIVENESS_FILE while its loop runs.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s CMD ["health-sidecar", "--liveness", "--max-age", "60s"]
ENTRYPOINT []
CMD ["backup-job", "--loop"]
