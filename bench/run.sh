#!/usr/bin/env bash
# The benchmark, one command: backup-job and restore-job against the runbook's shell procedure, the floors of
# this machine and restic, on reproducible data, alternating, RUNS times each. Writes bench/results/speed.md
# and speed.png (and speed.raw, the measurements, not committed). Not part of the test suite.
#   bench/run.sh                                   # the default: about 1.5 GB of database + 1 GB of uploads
#   SCALE=10 EXTRA_MB=150 UPLOADS_MB=200 RUNS=3 bench/run.sh     # a quick one
# SCALE: pgbench's scale (15 MB each on disk); EXTRA_MB: text, JSON and bytea rows besides; UPLOADS_MB: the
# uploads folder; SMALL: the second, smaller data set (every size divided by it) for backup-job's memory;
# PROFILE=1: after the rounds, a system-wide perf profile of one restore-job into profile-restore.txt.
# Takes about half an hour at the default size on 2 cores. Needs root or sudo to install what it uses.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE="${SCALE:-50}" EXTRA_MB="${EXTRA_MB:-750}" UPLOADS_MB="${UPLOADS_MB:-1000}" RUNS="${RUNS:-3}" SMALL="${SMALL:-4}"
SEED="${SEED:-1}" OUT="${OUT:-bench/results}" PROFILE="${PROFILE:-0}"

scripts/install-deps.sh
bench_packages=(restic pigz time python3-matplotlib)
profile=()
if [ "$PROFILE" = 1 ]; then bench_packages+=(linux-perf); profile=(--profile); fi
missing=()
for package in "${bench_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Its own build folder, so a benchmark never waits for (or disturbs) a debug build or a test run.
echo "Building the release binaries..."
swift build -c release --scratch-path .build-bench --product backup-job >/dev/null
swift build -c release --scratch-path .build-bench --product restore-job >/dev/null
swift build -c release --scratch-path .build-bench --product contingency-guard >/dev/null
BIN="$(swift build -c release --scratch-path .build-bench --show-bin-path)"

WORK="$(mktemp -d /tmp/contingency-bench.XXXXXX)"; chmod 755 "$WORK"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() { as_postgres "$PGBIN/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
mkdir -p "$WORK/pg" "$WORK/app" "$WORK/small" "$WORK/secrets"
[ "$(id -u)" -eq 0 ] && chown postgres "$WORK/pg"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
as_postgres "$PGBIN/initdb" -D "$WORK/pg" -U postgres --auth=trust --no-locale >/dev/null
# Debian's defaults but for WAL room: checkpoints forced every 1 GB would weigh on every restore alike.
as_postgres "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$WORK/pg -c max_wal_size=8GB" start >/dev/null
export PGHOST=127.0.0.1 PGPORT="$PORT" PGUSER=postgres PATH="$PGBIN:$PATH"

echo "Making the data (seed $SEED): pgbench scale $SCALE + ${EXTRA_MB} MB of rows, ${UPLOADS_MB} MB of uploads; and 1/$SMALL of it"
make_data() {  # database, pgbench scale, extra MB, uploads folder, uploads MB
    createdb "$1"
    pgbench -i -q -s "$2" "$1" >/dev/null 2>&1
    python3 bench/dataset.py database --megabytes "$3" --seed "$SEED" --dbname "$1"
    python3 bench/dataset.py uploads --megabytes "$5" --seed "$SEED" --directory "$4"
}
make_data visual_db "$SCALE" "$EXTRA_MB" "$WORK/app/uploads" "$UPLOADS_MB"
make_data visual_small "$(( (SCALE + SMALL - 1) / SMALL ))" "$((EXTRA_MB / SMALL))" "$WORK/small/uploads" "$((UPLOADS_MB / SMALL))"
echo "KEY=value" > "$WORK/app/.env"
echo '{"name": "visual-platform", "version": "2.4.1"}' > "$WORK/app/package.json"
# The compressors' floor input: the same bytes a backup compresses (the uncompressed dump and the uploads).
pg_dump -Fc -Z0 -d visual_db -f "$WORK/database.dump"
tar cf "$WORK/floor-input.tar" -C "$WORK" database.dump -C "$WORK/app" uploads
# Secrets in files, never on a command line.
age-keygen -o "$WORK/secrets/age-key.txt" 2>/dev/null
RECIPIENT="$(age-keygen -y "$WORK/secrets/age-key.txt")"
head -c 32 /dev/urandom | base64 > "$WORK/secrets/restic-password"
chmod 600 "$WORK/secrets/"*

mkdir -p "$OUT"
python3 bench/bench.py --work "$WORK" --bin "$BIN" --pg-bin "$PGBIN" --db visual_db --uploads "$WORK/app/uploads" \
    --small-db visual_small --small-uploads "$WORK/small/uploads" --recipient "$RECIPIENT" \
    --identity-file "$WORK/secrets/age-key.txt" --restic-password-file "$WORK/secrets/restic-password" \
    --floor-input "$WORK/floor-input.tar" --floor-dump "$WORK/database.dump" --out "$OUT" --runs "$RUNS" \
    --parameters "SCALE=$SCALE EXTRA_MB=$EXTRA_MB UPLOADS_MB=$UPLOADS_MB RUNS=$RUNS SMALL=$SMALL SEED=$SEED" "${profile[@]}"
