#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a fresh Debian machine: installs what it needs, builds every
# product (the integration tests run the real executables), then runs `swift test`, whose summary ends the output.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build --build-tests 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]' || true
swift build 2>&1 | tail -3
exec swift test --skip-build 2>&1
