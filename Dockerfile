# Contingency: the four executables (and contingency-guard, which starts their child processes) in one image.
# Every container plays one role, picked by its command: backup-job, restore-job, cleanup-job, health-sidecar,
# once or with --loop. See docs/deployment.md.
#
#   docker build -t contingency:0.1.0 .                                  # everything, in Docker
#   docker build --build-arg PG_MAJOR=17 -t contingency:0.1.0-pg17 .     # pg_dump 17, for a PostgreSQL 17 server
#   scripts/build-image.sh                                               # podman, from binaries built on the host
#
# Build arguments:
#   PG_MAJOR      the PostgreSQL client's major version (default 15). pg_dump refuses a server newer than itself,
#                 so it must be at least the server's major: Debian 12's own is 15; any other comes from the
#                 PostgreSQL project's apt repository (apt.postgresql.org), set up by Debian's postgresql-common.
#   BINARIES      "build" (default): compile in the build stage below (with BuildKit or buildah/podman, which
#                 build only the stages the target needs; the legacy builder builds every stage and needs
#                 .build-image/bin/ to exist). "prebuilt": copy the executables from .build-image/bin/ in the
#                 build context instead (release builds with the static Swift standard
#                 library, made on a Debian 12 host by scripts/build-image.sh), for machines that have the Swift
#                 toolchain but not the swift image.
#   SWIFT_IMAGE, RUNTIME_IMAGE   the two base images (both Debian 12 "bookworm": the binaries link Debian 12's
#                 libpq, libarchive, libcurl and OpenSSL, so the runtime must be the same release).
ARG SWIFT_IMAGE=swift:6.2-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim
ARG BINARIES=build

FROM ${SWIFT_IMAGE} AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        libpq-dev libarchive-dev libcurl4-openssl-dev libssl-dev libdeflate-dev libzstd-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
# The benchmark's sidecar-load target is declared in Package.swift (never built here): its folder must exist.
COPY bench/SidecarLoad ./bench/SidecarLoad
# One product per call: `swift build` builds only the last of several --product options.
RUN for product in backup-job restore-job cleanup-job health-sidecar contingency-guard; do \
        swift build -c release --static-swift-stdlib --product "$product" || exit 1; \
    done \
    && mkdir -p /out && bin="$(swift build -c release --show-bin-path)" \
    && cd "$bin" && for product in backup-job restore-job cleanup-job health-sidecar contingency-guard; do \
        strip --strip-unneeded -o "/out/$product" "$product" || exit 1; \
    done

FROM scratch AS prebuilt
COPY .build-image/bin/ /out/

# The executables come from one of the two stages above; the other is never built.
FROM ${BINARIES} AS binaries

FROM ${RUNTIME_IMAGE} AS runtime
ARG PG_MAJOR=15
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="contingency" \
      org.opencontainers.image.description="Backup, retention, health watching and automatic rollback for a PostgreSQL + uploads web application" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.documentation="docs/deployment.md" \
      io.contingency.postgresql-client="${PG_MAJOR}"
# Only the runtime libraries the executables link, the PostgreSQL client tools they run (pg_dump, pg_dumpall,
# pg_restore, psql), CA certificates for HTTPS (S3, webhooks) and time zones for schedules in local time.
RUN set -eu; \
    apt-get update; \
    if [ "$PG_MAJOR" != 15 ]; then \
        apt-get install -y --no-install-recommends postgresql-common ca-certificates curl gnupg; \
        /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y; \
    fi; \
    apt-get install -y --no-install-recommends \
        libpq5 libarchive13 libcurl4 libssl3 libxml2 libdeflate0 libzstd1 ca-certificates tzdata \
        "postgresql-client-$PG_MAJOR"; \
    if [ "$PG_MAJOR" != 15 ]; then apt-mark manual ca-certificates; apt-get purge -y --auto-remove curl gnupg; fi; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin; \
    groupadd --system --gid 10001 contingency; \
    useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin contingency; \
    mkdir -p /backups /app; chown 10001:10001 /backups /app; chmod 0750 /backups
# /app holds the default UPLOADS_DIR (/app/uploads), ENV_FILE (/app/.env) and APP_DIR, mounted from the app's
# volumes: it belongs to the image's user, because a restore stages the .env beside it and keeps the replaced
# copy there (a single-file mount is then rewritten in place).
# Debian installs each major's tools under /usr/lib/postgresql/N/bin; the jobs look there through PG_BIN_DIR.
ENV PG_BIN_DIR=/usr/lib/postgresql/${PG_MAJOR}/bin \
    BACKUP_DIR=/backups
COPY --from=binaries /out/ /usr/local/bin/
# Every container that shares the store runs as this one uid/gid (chart: runAsUser/fsGroup 10001; compose:
# the named volume takes /backups' owner from the image).
USER 10001:10001
VOLUME ["/backups"]
# Holds for every role: each --loop process (backup, cleanup, restore runner, sidecar) touches LIVENESS_FILE
# while its loop runs; a container that runs once (a CronJob, `compose run`) has no healthcheck to pass.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["health-sidecar", "--liveness", "--max-age", "90s"]
CMD ["backup-job", "--help"]
