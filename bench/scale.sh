#!/usr/bin/env bash
# How the cost grows, one command: backup-job and restore-job (zstd) at several sizes of the default data, RUNS
# rounds each; per size the median time, time per GB of input and peak RSS, and their growth over the smallest
# size. Writes bench/results/scaling.md and scaling.png (and scaling.raw, the measurements, not committed). Not
# part of the test suite. Each size's data is made, measured, then dropped before the next (4x the default is
# about 6 GB of database and 4 GB of uploads, twice the database while a restore runs, plus the archive).
#   bench/scale.sh                                            # the default data at 1x, 2x and 4x
#   SCALE=2 EXTRA_MB=10 UPLOADS_MB=20 RUNS=2 bench/scale.sh   # a quick check of the command itself
# SCALE (50), EXTRA_MB (750), UPLOADS_MB (1000): the 1x size, as run.sh's; FACTORS ("1 2 4"): the sizes, as
# multiples of it; RUNS: rounds per size (3); SEED: the data's seed (1). About 35 minutes with the
# defaults on 2 cores, half of it at 4x. Needs root or sudo to install
# what it uses.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE="${SCALE:-50}" EXTRA_MB="${EXTRA_MB:-750}" UPLOADS_MB="${UPLOADS_MB:-1000}" FACTORS="${FACTORS:-1 2 4}"
RUNS="${RUNS:-3}" SEED="${SEED:-1}" OUT="${OUT:-bench/results}"

. bench/lib.sh
bench_install
bench_build backup-job restore-job contingency-guard
bench_start_postgres
mkdir -p "$OUT"
RAW="$OUT/scaling.raw"
rm -f "$RAW"

for factor in $FACTORS; do
    [[ "$factor" =~ ^[1-9][0-9]*$ ]] || { echo "FACTORS holds whole numbers (got '$factor')" >&2; exit 2; }
    sizes=("$((SCALE * factor))" "$((EXTRA_MB * factor))" "$((UPLOADS_MB * factor))")
    folder="$WORK/x$factor"
    mkdir -p "$folder/app"
    echo "Making the ${factor}x data (seed $SEED): pgbench scale ${sizes[0]} + ${sizes[1]} MB of rows," \
         "${sizes[2]} MB of uploads"
    make_data visual_db "${sizes[0]}" "${sizes[1]}" "$folder/app/uploads" "${sizes[2]}"
    make_app_files "$folder/app"
    python3 bench/scale.py measure --factor "$factor" --work "$folder" --bin "$BIN" --pg-bin "$PGBIN" --db visual_db \
        --uploads "$folder/app/uploads" --runs "$RUNS" --raw "$RAW" \
        --parameters "scale ${sizes[0]}, ${sizes[1]} MB of rows, ${sizes[2]} MB of uploads, seed $SEED"
    dropdb visual_db
    rm -rf "$folder"
done
# Debian's python3, whose matplotlib bench_install provides (another python3 may come first on PATH).
/usr/bin/python3 bench/scale.py report "$RAW" "$OUT"
