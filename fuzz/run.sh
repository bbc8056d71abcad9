#!/usr/bin/env bash
# Fuzzes the parsers that read what others wrote (the store, an archive, a server's answers) with libFuzzer:
#   dump-scanner  pg_dump custom-format archives (CustomDumpScanner)
#   age           age headers and payloads, age key lists (Age/)
#   manifest      manifests and metadata.json (Manifest, BackupMetadata)
#   schedule      cron lines, macros and intervals (Schedule, CronExpression)
#   backup-name   archive names listed in a store (BackupName)
#   s3-xml        S3's XML answers: listing pages, upload listings, errors (S3XML)
#   prometheus-text  metrics files the jobs publish in the store (PrometheusText)
#   copy-data     a table's data block split into rows, and its COPY statement (CustomDumpDataBlock, CopyDataSplitter,
#                 CopyStatement)
#
# Usage: fuzz/run.sh [SECONDS] [TARGET...]   SECONDS per target (default 300), every target by default.
#
# Each target is fuzz/targets/<target>.swift: a LLVMFuzzerTestOneInput that feeds the bytes to the parser and
# ignores its errors. Any trap, sanitizer report, timeout (an input taking over 10 s: a loop) or allocation over
# 256 MB (a length taken on trust) fails the run: the input is saved as fuzz/crashes/<target>/<kind>-<sha1>, the
# command to replay it is printed, and the script exits 1 after the other targets have run.
#
# The parsers' own sources are compiled here with `-sanitize=fuzzer,address` into modules of the same names as
# the package's (BackupCore whole; the parser files of BackupInterop and BackupStorage), so the package itself
# gains no fuzzing product and `swift build` works where no fuzzer runtime is installed. Inputs found are kept
# in .build/fuzz/corpus/<target> (FUZZ_BUILD_DIR), beside the committed seeds of fuzz/corpus/<target>.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-300}"
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "usage: fuzz/run.sh [SECONDS] [TARGET...]" >&2; exit 2; }
shift $(( $# > 0 ? 1 : 0 ))
all=(dump-scanner age manifest schedule backup-name s3-xml prometheus-text copy-data)
targets=("${@:-${all[@]}}")
for target in "${targets[@]}"; do
    [[ -f "fuzz/targets/$target.swift" ]] || { echo "unknown fuzz target $target (known: ${all[*]})" >&2; exit 2; }
done

build="${FUZZ_BUILD_DIR:-.build/fuzz}"
mkdir -p "$build"
# Overflow checks stay on with -O (only -Ounchecked removes them): a trap in the parser is a crash here.
swift=(swiftc -swift-version 6 -sanitize=fuzzer,address -O -g -parse-as-library -enable-testing -I "$build")
# COpenSSL's module map links libcrypto; pkg-config only adds an include folder where OpenSSL is not in /usr.
openssl=(-I Sources/COpenSSL $( (pkg-config --cflags-only-I openssl 2>/dev/null || true) | sed 's/-I/-Xcc -I/g'))

echo "Building the fuzz targets in $build..."
buildlog="$build/build.log"
: >"$buildlog"
module() {
    local name="$1"
    shift
    "${swift[@]}" -wmo -module-name "$name" -emit-module -emit-module-path "$build/$name.swiftmodule" \
        -c "$@" -o "$build/$name.o" >>"$buildlog" 2>&1
}
link() {
    # ld.gold warns that ASan's local symbols cannot be exported; nothing else is expected here.
    "${swift[@]}" "${openssl[@]}" "fuzz/targets/$1.swift" "$build"/Backup{Core,Interop,Storage}.o \
        -o "$build/$1" >"$build/$1.build.log" 2>&1
}
built=true
# Every file of BackupCore, its folders (Roles/, Rollback/) included.
module BackupCore $(find Sources/BackupCore -name "*.swift" | sort) || built=false
$built && { module BackupInterop "${openssl[@]}" Sources/BackupInterop/CustomDumpScanner.swift \
    Sources/BackupInterop/CustomDumpDataBlock.swift Sources/BackupInterop/Age/*.swift Sources/BackupInterop/SHA256.swift || built=false; }
$built && { module BackupStorage Sources/BackupStorage/S3/S3XML.swift || built=false; }
if $built; then
    links=()
    for target in "${targets[@]}"; do
        link "$target" &
        links+=("$!")
    done
    for job in "${links[@]}"; do wait "$job" || built=false; done
    for target in "${targets[@]}"; do grep -v "Cannot export local symbol" "$build/$target.build.log" >>"$buildlog" || true; done
fi
if ! $built; then
    cat "$buildlog"
    echo "Building the fuzz targets failed (log: $buildlog)" >&2
    exit 1
fi

# A trap goes straight to libFuzzer, which saves the input and prints the stack: the Swift runtime's own
# backtracer, reading the crashed process's memory, would only add false AddressSanitizer reports.
export SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
failed=()
for target in "${targets[@]}"; do
    mkdir -p "$build/corpus/$target" "fuzz/crashes/$target"
    log="$build/$target.log"
    echo "Fuzzing $target for ${seconds}s..."
    # The first folder takes what the fuzzer finds; the committed seeds are read only. Leaks are not looked
    # for (what the Swift runtime and Foundation keep for the process reads as leaks at exit); steady growth
    # still meets the RSS limit.
    seeds=()
    [[ -d "fuzz/corpus/$target" ]] && seeds=("fuzz/corpus/$target")
    if "$build/$target" "$build/corpus/$target" "${seeds[@]}" \
        -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -malloc_limit_mb=256 -detect_leaks=0 -artifact_prefix="fuzz/crashes/$target/" \
        -print_final_stats=1 >"$log" 2>&1; then
        runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
        echo "  $target: no crash in ${runs:-?} runs"
    else
        failed+=("$target")
        tail -n 60 "$log"
        artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
        echo "  $target: FAILED (full log: $log)"
        [[ -n "$artifact" ]] && echo "  replay: SWIFT_BACKTRACE=$SWIFT_BACKTRACE ASAN_OPTIONS=$ASAN_OPTIONS $build/$target $artifact"
    fi
done

if (( ${#failed[@]} > 0 )); then
    echo "Fuzzing found a crash in: ${failed[*]} (inputs in fuzz/crashes/)" >&2
    exit 1
fi
echo "Fuzzing: no crash in ${targets[*]} (${seconds}s each)"
