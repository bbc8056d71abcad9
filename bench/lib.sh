# What the benchmark commands (run.sh, restore.sh, scale.sh) share, sourced by them from the repository's root:
# the packages they use, the release build, a throwaway PostgreSQL 15 and the data. Not run on its own.
# Every function stops the script (set -euo pipefail in the caller) at the first failure.

# Installs what the project needs (scripts/install-deps.sh), GNU time and matplotlib, and the packages named.
bench_install() {  # extra Debian packages...
    scripts/install-deps.sh
    local package missing=()
    for package in time python3-matplotlib "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    if ((${#missing[@]})); then
        local SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# Builds the products named in release mode in their own build folder, so that a benchmark never waits for (or
# disturbs) a debug build or a test run; sets BIN to the folder holding them.
bench_build() {  # products...
    echo "Building the release binaries..."
    local product
    for product in "$@"; do
        swift build -c release --scratch-path .build-bench --product "$product" >/dev/null
    done
    BIN="$(swift build -c release --scratch-path .build-bench --show-bin-path)"
}

# Makes WORK (a new folder under /tmp, removed on exit) and starts a PostgreSQL 15 there on a free port of
# 127.0.0.1, stopped on exit; exports PG* for it and puts its binaries first on PATH. Sets WORK and PGBIN.
bench_start_postgres() {
    WORK="$(mktemp -d /tmp/contingency-bench.XXXXXX)"; chmod 755 "$WORK"
    PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
    trap bench_cleanup EXIT INT TERM
    mkdir -p "$WORK/pg"
    [ "$(id -u)" -eq 0 ] && chown postgres "$WORK/pg"
    local port
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    as_postgres "$PGBIN/initdb" -D "$WORK/pg" -U postgres --auth=trust --no-locale >/dev/null
    # Debian's defaults but for WAL room: checkpoints forced every 1 GB would weigh on every restore alike.
    as_postgres "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/server.log" -w \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$WORK/pg -c max_wal_size=8GB" \
        start >/dev/null
    export PGHOST=127.0.0.1 PGPORT="$port" PGUSER=postgres PATH="$PGBIN:$PATH"
}

as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

bench_cleanup() {
    as_postgres "$PGBIN/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}

# The benchmark's data, the same bytes for the same SEED and sizes: pgbench's tables at a scale, dataset.py's
# rows of the kind an application keeps, and dataset.py's uploads.
make_data() {  # database, pgbench scale, extra MB, uploads folder, uploads MB
    createdb "$1"
    pgbench -i -q -s "$2" "$1" >/dev/null 2>&1
    python3 bench/dataset.py database --megabytes "$3" --seed "$SEED" --dbname "$1"
    python3 bench/dataset.py uploads --megabytes "$5" --seed "$SEED" --directory "$4"
}

# An application folder beside the uploads: the .env and package.json a backup carries.
make_app_files() {  # app folder
    echo "KEY=value" > "$1/.env"
    echo '{"name": "visual-platform", "version": "2.4.1"}' > "$1/package.json"
}

# Secrets in files, never on a command line: an age identity (RECIPIENT is set to its public key) and a restic
# password, in WORK/secrets.
make_secrets() {
    mkdir -p "$WORK/secrets"
    age-keygen -o "$WORK/secrets/age-key.txt" 2>/dev/null
    RECIPIENT="$(age-keygen -y "$WORK/secrets/age-key.txt")"
    head -c 32 /dev/urandom | base64 > "$WORK/secrets/restic-password"
    chmod 600 "$WORK/secrets/"*
}
