#!/usr/bin/env bash
# Installs what building and testing Contingency needs on a fresh Debian 12 machine: the C libraries'
# -dev packages, PostgreSQL 15 (server and client) and the command-line tools the tests compare against
# (GNU tar, zstd, Debian's age for encryption interop, prometheus for promtool, prometheus-pushgateway for the
# jobs' pushes in JobMetricsTests), and podman with runc, netavark and aardvark-dns (the containers' DNS), whose
# Docker-compatible API and busybox-made images the Docker app control's tests run against; mmdebstrap (base images from Debian's packages), binutils (strip) and
# docker-compose for the image and the compose example (scripts/build-image.sh, ComposeDeploymentTests).
# Installs nothing when everything is already there.
set -euo pipefail
packages=(libpq-dev libarchive-dev libcurl4-openssl-dev libssl-dev libdeflate-dev libzstd-dev postgresql-15 postgresql-client-15 zstd gzip tar util-linux procps age prometheus bc time curl podman runc netavark aardvark-dns iptables busybox-static openssl mmdebstrap docker-compose binutils prometheus-pushgateway)
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

# moto's S3 server (and boto3, which comes with it) for the S3 store's tests: Tests/TestSupport/MotoServer.swift
# runs it with python3. Pinned to the version whose signature check MotoServer patches. Installed for the
# system python3 (PEP 668's "externally managed" guard is waived: this is a build and test machine).
moto_version="5.2.1"
if ! python3 -c 'import moto.server, boto3' 2>/dev/null; then
    echo "Installing moto[server]==$moto_version with pip"
    python3 -m pip --version >/dev/null 2>&1 || { echo "python3 has no pip (Debian: apt-get install python3-pip)"; exit 1; }
    pip_user=()
    [ "$(id -u)" -eq 0 ] || pip_user=(--user)
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --disable-pip-version-check "${pip_user[@]}" "moto[server]==$moto_version"
fi

# schemathesis, the property-based API fuzzer that holds the sidecar's admin API to docs/openapi.yaml
# (Tests/BackupIntegrationTests/AdminAPIHostileTests.swift). Pinned: its checks and output are what the test reads.
schemathesis_version="4.32.5"
if [ "$(python3 -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" != "$schemathesis_version" ]; then
    echo "Installing schemathesis==$schemathesis_version with pip"
    pip_user=()
    [ "$(id -u)" -eq 0 ] || pip_user=(--user)
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --disable-pip-version-check "${pip_user[@]}" "schemathesis==$schemathesis_version"
fi

# The Helm chart's and the CI example's offline checks (Tests/BackupIntegrationTests/HelmChartTests.swift):
# helm-python-sdk (Helm's Go SDK as a shared library: render and lint, no helm binary), kubernetes-validate (the
# Kubernetes schemas, 1.30 used) and check-jsonschema (its vendored GitHub workflow and Compose schemas). Pinned.
helm_tools=("helm-python-sdk==0.2.2" "kubernetes-validate==1.37.0" "check-jsonschema==0.39.0")
helm_tools_missing=()
for requirement in "${helm_tools[@]}"; do
    [ "$(python3 -c "import importlib.metadata as m; print(m.version('${requirement%%==*}'))" 2>/dev/null)" = "${requirement##*==}" ] \
        || helm_tools_missing+=("$requirement")
done
if ((${#helm_tools_missing[@]})); then
    echo "Installing ${helm_tools_missing[*]} with pip"
    pip_user=()
    [ "$(id -u)" -eq 0 ] || pip_user=(--user)
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --disable-pip-version-check "${pip_user[@]}" "${helm_tools_missing[@]}"
fi

# Debian's chromium (and a font for its screenshots) for the status page's browser test
# (Tests/BackupIntegrationTests/StatusPageBrowserTests.swift): Tests/Support/status_page_browser.py drives it over the
# DevTools protocol with the standard library alone, so no pip package is needed.
browser_packages=(chromium fonts-dejavu-core)
browser_missing=()
for package in "${browser_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || browser_missing+=("$package")
done
if ((${#browser_missing[@]})); then
    echo "Installing: ${browser_missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${browser_missing[@]}" >/dev/null
fi
