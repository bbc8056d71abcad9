#!/usr/bin/env bash
# Installs what building and testing Contingency needs on a fresh Debian 12 machine: the C libraries'
# -dev packages, PostgreSQL 15 (server and client) and the command-line tools the tests compare against
# (GNU tar, zstd, Debian's age for encryption interop, prometheus for promtool).
# Installs nothing when everything is already there.
set -euo pipefail
packages=(libpq-dev libarchive-dev libcurl4-openssl-dev libssl-dev postgresql-15 postgresql-client-15 zstd gzip tar util-linux procps age prometheus bc time)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "Installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "swift is not on PATH (expected Swift 6.2+ at /opt/swift)"; exit 1; }
