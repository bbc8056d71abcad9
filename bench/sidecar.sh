#!/usr/bin/env bash
# The sidecar's responsiveness, one command: /healthz latency while a backup runs in the sidecar's process, and
# the sidecar's idle memory. Builds sidecar-load (bench/SidecarLoad: the sidecar's application plus a backup on a
# cue) and health-sidecar (also as the image builds it) in release mode, starts a throwaway PostgreSQL, makes the data, runs bench/sidecar.py and writes
# bench/results/sidecar.md (and sidecar.raw, the measurements in JSON, not committed). Always cleans up. Not part
# of the test suite.
#   bench/sidecar.sh                      # SIZE=400: about 400 MB of data (half database, half uploads)
#   SIZE=150 ROUNDS=1 bench/sidecar.sh    # a quick one
# SIZE: MB of data; RATE: /healthz requests a second (20); IDLE: seconds of the idle baseline (30); ROUNDS:
# backups of each compression (2); COMPRESSIONS: gzip,zstd; BEFORE: an earlier run's JSON, reported beside.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE="${SIZE:-400}" RATE="${RATE:-20}" IDLE="${IDLE:-30}" ROUNDS="${ROUNDS:-2}" COMPRESSIONS="${COMPRESSIONS:-gzip,zstd}"
SEED="${SEED:-1}" OUT="${OUT:-bench/results}" BEFORE="${BEFORE:-}"

scripts/install-deps.sh
# Its own build folder, so a benchmark never waits for (or disturbs) a debug build or a test run.
echo "Building sidecar-load (release)..."
swift build -c release --scratch-path .build-bench --product sidecar-load >/dev/null
swift build -c release --scratch-path .build-bench --product contingency-guard >/dev/null
swift build -c release --scratch-path .build-bench --product health-sidecar >/dev/null
BIN="$(swift build -c release --scratch-path .build-bench --show-bin-path)"
# health-sidecar as the image builds it (Dockerfile: the Swift runtime linked in), for its idle memory.
echo "Building health-sidecar as the image does (release, --static-swift-stdlib)..."
swift build -c release --static-swift-stdlib --scratch-path .build-release --product health-sidecar >/dev/null
STATIC_BIN="$(swift build -c release --static-swift-stdlib --scratch-path .build-release --show-bin-path)"

WORK="$(mktemp -d /tmp/contingency-sidecar-bench.XXXXXX)"; chmod 755 "$WORK"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    status=$?
    as_postgres "$PGBIN/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT INT TERM
mkdir -p "$WORK/pg" "$WORK/app" "$WORK/store"
[ "$(id -u)" -eq 0 ] && chown postgres "$WORK/pg"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT="$(free_port)"
as_postgres "$PGBIN/initdb" -D "$WORK/pg" -U postgres --auth=trust --no-locale >/dev/null
as_postgres "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$WORK/pg" start >/dev/null
export PGHOST=127.0.0.1 PGPORT="$PORT" PGUSER=postgres PATH="$PGBIN:$PATH"

echo "Making the data (seed $SEED): about $SIZE MB, half database, half uploads"
createdb visual_db
pgbench -i -q -s "$(( SIZE / 100 + 1 ))" visual_db >/dev/null 2>&1
python3 bench/dataset.py database --megabytes "$(( SIZE / 2 ))" --seed "$SEED" --dbname visual_db
python3 bench/dataset.py uploads --megabytes "$(( SIZE / 2 ))" --seed "$SEED" --directory "$WORK/app/uploads"
echo "KEY=value" > "$WORK/app/.env"
echo '{"name": "visual-platform", "version": "2.4.1"}' > "$WORK/app/package.json"
DATABASE_MB="$(psql -qtA -d visual_db -c "select pg_database_size('visual_db') / 1000000")"
UPLOADS_MB="$(du -sm --apparent-size "$WORK/app/uploads" | cut -f1)"

SIDECAR_PORT="$(free_port)"
# The sidecar probes its own /healthz as "the application" (the benchmark has none) every 5 s, so its probe loop
# and heartbeat writes run through the backups too.
export SIDECAR_PORT SIDECAR_BIND=127.0.0.1 SIDECAR_ID=bench-sidecar HEALTH_CHECK_URL="http://127.0.0.1:$SIDECAR_PORT/healthz" \
    HEALTH_CHECK_INTERVAL=5s BACKUP_DIR="$WORK/store" DATABASE_NAME=visual_db UPLOADS_DIR="$WORK/app/uploads" \
    ENV_FILE="$WORK/app/.env" APP_DIR="$WORK/app" PROGRESS_INTERVAL=1h PG_BIN_DIR="$PGBIN"
mkdir -p "$OUT"
COMMIT="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- Sources Package.swift bench/SidecarLoad || echo '+changes')"
python3 bench/sidecar.py --bin "$BIN/sidecar-load" --port "$SIDECAR_PORT" --log "$WORK/sidecar.log" \
    --rate "$RATE" --idle "$IDLE" --rounds "$ROUNDS" --compressions "$COMPRESSIONS" \
    --dataset "database ${DATABASE_MB} MB (pgbench scale $(( SIZE / 100 + 1 )) + bench/dataset.py), uploads ${UPLOADS_MB} MB" \
    --parameters "SIZE=$SIZE RATE=$RATE IDLE=$IDLE ROUNDS=$ROUNDS COMPRESSIONS=$COMPRESSIONS SEED=$SEED" \
    --commit "$COMMIT" --raw "$OUT/sidecar.raw" --out "$OUT/sidecar.md" \
    --alone "as the image builds it" "$STATIC_BIN/health-sidecar" --alone "Swift runtime as shared libraries" \
    "$BIN/health-sidecar" --alone-port "$(free_port)" \
    ${BEFORE:+--before "$BEFORE"} --notes bench/sidecar-notes.md \
    || { echo "The sidecar's log:"; tail -40 "$WORK/sidecar.log"; exit 1; }
