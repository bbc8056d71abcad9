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

. bench/lib.sh
profile=()
extra_packages=(restic pigz)
if [ "$PROFILE" = 1 ]; then extra_packages+=(linux-perf); profile=(--profile); fi
bench_install "${extra_packages[@]}"
bench_build backup-job restore-job contingency-guard
bench_start_postgres
mkdir -p "$WORK/app" "$WORK/small"

echo "Making the data (seed $SEED): pgbench scale $SCALE + ${EXTRA_MB} MB of rows, ${UPLOADS_MB} MB of uploads; and 1/$SMALL of it"
make_data visual_db "$SCALE" "$EXTRA_MB" "$WORK/app/uploads" "$UPLOADS_MB"
make_data visual_small "$(( (SCALE + SMALL - 1) / SMALL ))" "$((EXTRA_MB / SMALL))" "$WORK/small/uploads" "$((UPLOADS_MB / SMALL))"
make_app_files "$WORK/app"
# The compressors' floor input: the same bytes a backup compresses (the uncompressed dump and the uploads).
pg_dump -Fc -Z0 -d visual_db -f "$WORK/database.dump"
tar cf "$WORK/floor-input.tar" -C "$WORK" database.dump -C "$WORK/app" uploads
make_secrets

mkdir -p "$OUT"
python3 bench/bench.py --work "$WORK" --bin "$BIN" --pg-bin "$PGBIN" --db visual_db --uploads "$WORK/app/uploads" \
    --small-db visual_small --small-uploads "$WORK/small/uploads" --recipient "$RECIPIENT" \
    --identity-file "$WORK/secrets/age-key.txt" --restic-password-file "$WORK/secrets/restic-password" \
    --floor-input "$WORK/floor-input.tar" --floor-dump "$WORK/database.dump" --out "$OUT" --runs "$RUNS" \
    --parameters "SCALE=$SCALE EXTRA_MB=$EXTRA_MB UPLOADS_MB=$UPLOADS_MB RUNS=$RUNS SMALL=$SMALL SEED=$SEED" "${profile[@]}"
