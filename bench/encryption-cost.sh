#!/usr/bin/env bash
# What age encryption costs a backup: backup-job (release build) with and without AGE_RECIPIENTS on the same
# data, alternating, RUNS times each; prints and writes bench/results/encryption.md with medians, min/max
# and the ratio. Not part of the test suite. Data: pgbench at SCALE plus UPLOADS_MB of mixed uploads.
#   bench/encryption-cost.sh            # SCALE=20 UPLOADS_MB=300 RUNS=3 COMPRESSION=gzip
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE="${SCALE:-20}" UPLOADS_MB="${UPLOADS_MB:-300}" RUNS="${RUNS:-3}" COMPRESSION="${COMPRESSION:-gzip}"
scripts/install-deps.sh
# Its own build folder, so a benchmark never waits for (or disturbs) a debug build or a test run.
swift build -c release --scratch-path .build-bench --product backup-job >/dev/null
swift build -c release --scratch-path .build-bench --product contingency-guard >/dev/null
BIN="$(swift build -c release --scratch-path .build-bench --show-bin-path)"

WORK="$(mktemp -d /tmp/contingency-bench.XXXXXX)"; chmod 755 "$WORK"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() { as_postgres "$PGBIN/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
mkdir -p "$WORK/pg" "$WORK/app/uploads" "$WORK/backups"
[ "$(id -u)" -eq 0 ] && chown postgres "$WORK/pg"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
as_postgres "$PGBIN/initdb" -D "$WORK/pg" -U postgres --auth=trust --no-locale >/dev/null
as_postgres "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/server.log" -w -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$WORK/pg" start >/dev/null
export PGHOST=127.0.0.1 PGPORT="$PORT" PGUSER=postgres
"$PGBIN/createdb" visual_db
"$PGBIN/pgbench" -i -q -s "$SCALE" visual_db >/dev/null 2>&1
# Half incompressible, half text-like uploads.
for i in $(seq 1 $((UPLOADS_MB / 20))); do
    head -c 10000000 /dev/urandom > "$WORK/app/uploads/photo-$i.bin"
    head -c 7500000 /dev/urandom | base64 -w 120 > "$WORK/app/uploads/doc-$i.txt"
done
echo "KEY=value" > "$WORK/app/.env"
KEY="$(age-keygen 2>/dev/null | grep '^AGE-SECRET-KEY')"
RECIPIENT="$(echo "$KEY" | age-keygen -y)"
export BACKUP_DIR="$WORK/backups" DATABASE_NAME=visual_db UPLOADS_DIR="$WORK/app/uploads" ENV_FILE="$WORK/app/.env" \
    APP_DIR="$WORK/app" BACKUP_COMPRESSION="$COMPRESSION"

run() {  # $1: label, rest: env assignments; prints seconds
    local start end
    start=$(date +%s.%N)
    env "${@:2}" "$BIN/backup-job" >/dev/null
    end=$(date +%s.%N)
    rm -f "$WORK"/backups/visual_backup_*
    echo "$end - $start" | bc
}
plain=(); encrypted=()
for i in $(seq 1 "$RUNS"); do
    plain+=("$(run plain AGE_RECIPIENTS=)")
    encrypted+=("$(run age AGE_RECIPIENTS="$RECIPIENT")")
done
stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%.2f %.2f %.2f", a[int((NR+1)/2)], a[1], a[NR]}'; }
read -r pm pmin pmax <<<"$(stats "${plain[@]}")"
read -r em emin emax <<<"$(stats "${encrypted[@]}")"
ratio="$(echo "scale=3; $em / $pm" | bc)"
report="bench/results/encryption.md"
{
    echo "# Encryption cost ($(date -u +%Y-%m-%d), $(nproc) cores, $COMPRESSION, pgbench scale $SCALE + ${UPLOADS_MB} MB uploads, $RUNS runs each)"
    echo
    echo "| backup-job | median s | min s | max s | ratio |"
    echo "|---|---|---|---|---|"
    echo "| plain | $pm | $pmin | $pmax | 1.00 |"
    echo "| age X25519 | $em | $emin | $emax | $ratio |"
} > "$report"
cat "$report"
