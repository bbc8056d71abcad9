#!/usr/bin/env bash
# The restore benchmark, one command: restores only, on two data sets one after the other, RUNS rounds each
# (every case once per round): the runbook's shell restore, restore-job gzip, zstd and gzip + age (archives made
# once by backup-job), and the floors (pg_restore -j2 of the dump file; the server's COPY of every table from a
# local file with no index, then the index builds), and the least work any verified restore of the zstd archive
# does (zstd -d of it, tar -x of the uploads, the SHA-256 rate of openssl speed). Writes bench/results/restore.md (and restore.raw, the
# measurements, not committed). Not part of the test suite.
#   bench/restore.sh                               # both data sets at their default sizes
#   PGBENCH20_SCALE=2 PGBENCH20_EXTRA_MB=5 PGBENCH20_UPLOADS_MB=20 SCALE=2 EXTRA_MB=10 UPLOADS_MB=20 RUNS=2 \
#       bench/restore.sh                           # a quick check of the command itself
# Data sets (DATASETS, default "pgbench20 default"):
#   pgbench20  one large table: pgbench at PGBENCH20_SCALE (20: pgbench_accounts holds most of the database),
#              PGBENCH20_EXTRA_MB (20) of dataset.py's rows, PGBENCH20_UPLOADS_MB (300) of uploads
#   default    run.sh's default data: pgbench at SCALE (50), EXTRA_MB (750) of rows, UPLOADS_MB (1000) of uploads
# RUNS: rounds (5); SEED: the data's seed (1); PROFILE=1: after pgbench20's rounds, a system-wide perf profile of
# one restore-job into profile-restore.txt (kept in bench/results as profile-restore-pgbench20.txt, beside run.sh's
# profile-restore.txt). About 20 minutes with the defaults on 2 cores. Needs root or sudo to install what it uses.
set -euo pipefail
cd "$(dirname "$0")/.."
PGBENCH20_SCALE="${PGBENCH20_SCALE:-20}" PGBENCH20_EXTRA_MB="${PGBENCH20_EXTRA_MB:-20}"
PGBENCH20_UPLOADS_MB="${PGBENCH20_UPLOADS_MB:-300}"
SCALE="${SCALE:-50}" EXTRA_MB="${EXTRA_MB:-750}" UPLOADS_MB="${UPLOADS_MB:-1000}"
DATASETS="${DATASETS:-pgbench20 default}" RUNS="${RUNS:-5}" SEED="${SEED:-1}" OUT="${OUT:-bench/results}"
PROFILE="${PROFILE:-0}"

. bench/lib.sh
extra_packages=()
[ "$PROFILE" = 1 ] && extra_packages+=(linux-perf)
bench_install "${extra_packages[@]}"
bench_build backup-job restore-job contingency-guard
bench_start_postgres
make_secrets
mkdir -p "$OUT"
RAW="$OUT/restore.raw"
rm -f "$RAW"

for dataset in $DATASETS; do
    case "$dataset" in
        pgbench20) sizes=("$PGBENCH20_SCALE" "$PGBENCH20_EXTRA_MB" "$PGBENCH20_UPLOADS_MB") ;;
        default) sizes=("$SCALE" "$EXTRA_MB" "$UPLOADS_MB") ;;
        *) echo "Unknown data set '$dataset' in DATASETS (known: pgbench20 default)" >&2; exit 2 ;;
    esac
    # One data set on disk at a time: made, measured, then dropped.
    folder="$WORK/$dataset"
    mkdir -p "$folder/app"
    echo "Making the $dataset data (seed $SEED): pgbench scale ${sizes[0]} + ${sizes[1]} MB of rows," \
         "${sizes[2]} MB of uploads"
    make_data visual_db "${sizes[0]}" "${sizes[1]}" "$folder/app/uploads" "${sizes[2]}"
    make_app_files "$folder/app"
    profile=()
    [ "$PROFILE" = 1 ] && [ "$dataset" = pgbench20 ] && profile=(--profile)
    python3 bench/restore.py measure --dataset "$dataset" --work "$folder" --bin "$BIN" --pg-bin "$PGBIN" \
        --db visual_db --uploads "$folder/app/uploads" --recipient "$RECIPIENT" \
        --identity-file "$WORK/secrets/age-key.txt" --runs "$RUNS" --raw "$RAW" --out "$OUT" \
        --parameters "scale ${sizes[0]}, ${sizes[1]} MB of rows, ${sizes[2]} MB of uploads, seed $SEED" "${profile[@]}"
    dropdb visual_db
    rm -rf "$folder"
done
python3 bench/restore.py report "$RAW" "$OUT"
