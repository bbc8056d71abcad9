#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a fresh Debian machine: installs what it needs, builds every
# product (the integration tests run the real executables), fuzzes the parsers briefly, builds the container
# images, then runs `swift test`, whose summary ends the output.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
echo "Building (the first build of the Swift packages takes several minutes)..."
log="$(mktemp)"
if ! swift build --build-tests >"$log" 2>&1; then
    cat "$log"
    exit 1
fi
grep -E "warning:" "$log" | sort -u || true
rm -f "$log"
# A short libFuzzer run of every parser of what others write (fuzz/run.sh; FUZZ_SECONDS each, fuzz/run.sh alone
# runs 300 s each): a crash or a hang fails the tests, its input saved in fuzz/crashes/.
fuzz/run.sh "${FUZZ_SECONDS:-10}"
# The image and the compose example's other images, for the tests that run them (ComposeDeploymentTests): built
# with podman in a storage of the build's own from the Dockerfiles (a release build of the executables first; the
# runtime stages' apt-get uses the network here, the tests do not), saved as one archive the tests load.
echo "Building the images (release build, then podman)..."
scripts/build-image.sh --storage .build-image/podman --example-images --save .build-image/images.tar
# Not exec'd: where this script is a container's first process (PID 1), the shell stays as the parent that reaps
# what the tests leave orphaned (PostgreSQL's processes after pg_ctl, podman's conmon); swift test does not, and
# their zombies would fill the container's process limit. The suite's summary stays the last lines.
# At most TEST_PARALLEL_TESTS tests at once (default 32): every test runs servers and jobs as child processes, each
# with its threads, and all of them at once pass the 2048 processes and threads a container is allowed by default
# (podman's pids limit).
SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH="${TEST_PARALLEL_TESTS:-32}" swift test --skip-build 2>&1
