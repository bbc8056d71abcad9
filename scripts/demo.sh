#!/usr/bin/env bash
# The demo, end to end on embedded defaults: a throwaway PostgreSQL (Debian's server, in a temporary folder,
# on 127.0.0.1), sample data, an uploads folder and a .env; backup-job; damage; restore-job; proof that
# everything came back. Ctrl-C stops it at any point; it always cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Building (the first build of the Swift packages takes a few minutes)"
swift build --product backup-job >/dev/null
swift build --product restore-job >/dev/null
swift build --product contingency-guard >/dev/null  # every child process runs under it
BIN="$(swift build --show-bin-path)"

WORK="$(mktemp -d /tmp/contingency-demo.XXXXXX)"
chmod 755 "$WORK"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
PGDATA="$WORK/pgdata"
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    trap - EXIT INT TERM
    [ -f "$PGDATA/postmaster.pid" ] && as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
    echo "Cleaned up $WORK"
}
trap cleanup EXIT
trap 'echo; echo "Interrupted"; exit 130' INT TERM

say "Starting a throwaway PostgreSQL in $PGDATA"
PASSWORD="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
mkdir -p "$PGDATA" && printf '%s\n' "$PASSWORD" > "$WORK/pwfile"
[ "$(id -u)" -eq 0 ] && chown -R postgres: "$PGDATA" "$WORK/pwfile"
as_postgres "$PGBIN/initdb" -D "$PGDATA" -U postgres --pwfile="$WORK/pwfile" --auth=scram-sha-256 -E UTF8 --no-locale >/dev/null
rm -f "$WORK/pwfile"
as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$PGDATA" start >/dev/null
export PGHOST=127.0.0.1 PGPORT="$PORT" PGUSER=postgres PGPASSWORD="$PASSWORD"
psql -qX -c "CREATE DATABASE visual_db"
psql -qX -d visual_db <<'SQL'
CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE NOT NULL, name text, created_at timestamptz DEFAULT now());
CREATE TABLE posts (id serial PRIMARY KEY, user_id int REFERENCES users(id), title text, body text, metadata jsonb);
INSERT INTO users (email, name) SELECT 'user' || i || '@example.com', 'User ' || i FROM generate_series(1, 500) i;
INSERT INTO posts (user_id, title, body, metadata)
    SELECT 1 + i % 500, 'Post ' || i, repeat('Lorem ipsum dolor sit amet. ', 20), jsonb_build_object('views', i * 7, 'tags', jsonb_build_array('a', 'b'))
    FROM generate_series(1, 5000) i;
SQL

say "Sample application: uploads and .env in $WORK/app"
APP="$WORK/app"
mkdir -p "$APP/uploads/avatars" "$APP/uploads/documents" "$WORK/backups"
for i in $(seq 1 20); do head -c $((i * 4096)) /dev/urandom > "$APP/uploads/avatars/avatar-$i.png"; done
for i in $(seq 1 10); do echo "Invoice $i: $(date -u)" > "$APP/uploads/documents/invoice $i.txt"; done
printf 'DATABASE_URL=postgres://app@db/visual_db\nSESSION_SECRET=%s\n' "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$APP/.env"
echo '{"name": "visual-platform", "version": "1.5.0"}' > "$APP/package.json"

fingerprint() {
    for table in users posts; do
        psql -AtX -d visual_db -c "SELECT '$table ' || count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY id)) FROM $table t" 2>/dev/null \
            || echo "$table (table missing)"
    done
    echo "uploads $(cd "$APP/uploads" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
    echo ".env    $(sha256sum < "$APP/.env" | cut -c1-16)"
}
BEFORE="$(fingerprint)"
echo "$BEFORE"

export BACKUP_DIR="$WORK/backups" DATABASE_NAME=visual_db UPLOADS_DIR="$APP/uploads" ENV_FILE="$APP/.env" APP_DIR="$APP"
say "backup-job keygen: the key pair that signs backups (private key kept out of the store)"
mkdir -p "$WORK/keys"
"$BIN/backup-job" keygen --out "$WORK/keys/signing.pem"
export BACKUP_VERIFY_KEYS_FILE="$WORK/keys/signing.pub.pem"
say "backup-job"
BACKUP_SIGNING_KEY_FILE="$WORK/keys/signing.pem" "$BIN/backup-job"
ls -l "$WORK/backups"

say "Damage: drop a table, change rows, delete and alter uploads, overwrite .env"
psql -qX -d visual_db -c "DROP TABLE posts" -c "UPDATE users SET name = 'oops' WHERE id < 100"
rm -rf "$APP/uploads/avatars"
echo "tampered" >> "$APP/uploads/documents/invoice 1.txt"
echo "BROKEN=1" > "$APP/.env"
fingerprint

say "restore-job (the newest complete backup signed by that key)"
RESTORE_TERMINATE_CONNECTIONS=true "$BIN/restore-job"

say "Proof"
AFTER="$(fingerprint)"
echo "$AFTER"
if [ "$BEFORE" = "$AFTER" ]; then
    echo "Everything came back: database rows, uploads and .env are identical to before the damage."
else
    echo "MISMATCH after restore:"; diff <(echo "$BEFORE") <(echo "$AFTER") || true; exit 1
fi
