#!/usr/bin/env bash
# The demo, end to end on embedded defaults, in two parts:
#  1. By hand: a throwaway PostgreSQL (Debian's server, in a temporary folder, on 127.0.0.1), sample data, an
#     uploads folder and a .env; a signed backup-job; damage; restore-job; proof that everything came back.
#  2. Unattended: a sample application with its own /healthz (deploy/compose/app/app.py, its own daemon,
#     started and stopped by a small script), health-sidecar --loop and restore-job --loop (the rollback
#     runner) in the background; a backup while the app is healthy; a failed deploy (a dropped table, deleted
#     uploads, a changed .env) makes /healthz answer 500; the sidecar notices, the runner rolls back; the
#     demo prints the rollback's steps with their times, proves the data came back and the app answers 200,
#     and shows the safety backup of the broken state and restore-job --plan.
# Ctrl-C stops it at any point; it always stops what it started and removes its folder (DEMO_KEEP=1 keeps
# the folder, with the logs, for a look afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
scripts/install-deps.sh

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
now() { date -u +%H:%M:%S; }

say "Building (the first build of the Swift packages takes a few minutes)"
for product in backup-job restore-job health-sidecar contingency-guard; do  # every child process runs under the guard
    swift build --product "$product" >/dev/null
done
BIN="$(swift build --show-bin-path)"

WORK="$(mktemp -d /tmp/contingency-demo.XXXXXX)"
chmod 755 "$WORK"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
PGDATA="$WORK/pgdata"
SIDECAR_PID="" RUNNER_PID=""
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
# SIGTERM, then up to 15 s for a graceful exit (a rollback in progress starts the app again first), then SIGKILL.
stop_process() {
    local pid="$1" i=0
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    trap - EXIT INT TERM
    stop_process "$RUNNER_PID"  # first: it may start the app again while it stops
    stop_process "$SIDECAR_PID"
    [ -x "$WORK/app.sh" ] && "$WORK/app.sh" stop >/dev/null 2>&1 || true
    [ -f "$PGDATA/postmaster.pid" ] && as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
    if [ "${DEMO_KEEP:-}" = 1 ]; then echo "Kept $WORK (DEMO_KEEP=1)"; else rm -rf "$WORK"; echo "Cleaned up $WORK"; fi
}
trap cleanup EXIT
trap 'echo; echo "Interrupted"; exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

say "Starting a throwaway PostgreSQL in $PGDATA"
PASSWORD="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
PORT="$(free_port)"
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
    echo "uploads $(cd "$APP/uploads" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum | sha256sum | cut -c1-16)"
    echo ".env    $(sha256sum < "$APP/.env" | cut -c1-16)"
}
same_or_fail() {  # before after what
    if [ "$1" = "$2" ]; then
        echo "$3"
    else
        echo "MISMATCH:"; diff <(echo "$1") <(echo "$2") || true; exit 1
    fi
}
BEFORE="$(fingerprint)"
echo "$BEFORE"

export BACKUP_DIR="$WORK/backups" DATABASE_NAME=visual_db UPLOADS_DIR="$APP/uploads" ENV_FILE="$APP/.env" APP_DIR="$APP"
say "backup-job keygen: the key pair that signs backups (private key kept out of the store)"
mkdir -p "$WORK/keys"
"$BIN/backup-job" keygen --out "$WORK/keys/signing.pem"
export BACKUP_VERIFY_KEYS_FILE="$WORK/keys/signing.pub.pem"
# The private key goes to backup-job alone, never exported: restore-job and the sidecar get the public key only.
backup() { BACKUP_SIGNING_KEY_FILE="$WORK/keys/signing.pem" "$BIN/backup-job"; }

say "Part 1, by hand: backup-job"
backup
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
same_or_fail "$BEFORE" "$AFTER" \
    "Everything came back: database rows, uploads and .env are identical to before the damage."

# ---------------------------------------------------------------------------------------------------------------
say "Part 2, unattended: the sample app, its health sidecar and the rollback runner"
APP_PORT="$(free_port)"
SIDECAR_PORT="$(free_port)"
STATE="$BACKUP_DIR/.contingency"
sq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
# The app's settings, its database password included, in a file only its owner reads: app control commands,
# like every hook, do not inherit the product's secrets (PGPASSWORD), so the script sources them itself.
(
    umask 077
    for setting in "PGHOST=$PGHOST" "PGPORT=$PGPORT" "PGUSER=$PGUSER" "PGPASSWORD=$PGPASSWORD" "PGDATABASE=visual_db" \
        "PG_BIN_DIR=$PGBIN" "FIXTURE_UPLOADS=$APP/uploads" "FIXTURE_REQUIRED_FILE=avatars/avatar-1.png" \
        "FIXTURE_QUERY=SELECT (SELECT count(*) FROM users) || ' users, '
            || (SELECT count(*) FROM posts) || ' posts'"; do
        printf 'export %s=%s\n' "${setting%%=*}" "$(sq "${setting#*=}")"
    done > "$WORK/app.env"
)
# The app is a daemon of its own (setsid): not a child of the runner's hook, which the runner's guard would end.
cat > "$WORK/app.sh" <<EOF
#!/bin/sh
# Starts or stops the sample application, as an operator's script would; restore-job runs it as
# APP_STOP_COMMAND ("app.sh stop") and APP_START_COMMAND ("app.sh start").
set -e
. '$WORK/app.env'
case "\$1" in
start)
    if [ -f '$WORK/app.pid' ] && kill -0 "\$(cat '$WORK/app.pid')" 2>/dev/null; then exit 0; fi
    : > '$WORK/app.out'
    setsid python3 '$REPO/deploy/compose/app/app.py' --port $APP_PORT \
        >>'$WORK/app.out' 2>>'$WORK/app.err' </dev/null &
    echo \$! > '$WORK/app.pid'
    i=0
    while ! grep -q 'listening on' '$WORK/app.out'; do
        i=\$((i + 1)); [ \$i -gt 200 ] && { echo 'the app did not start: see $WORK/app.err' >&2; exit 1; }
        sleep 0.05
    done
    echo "\$(date -u +%Y-%m-%dT%H:%M:%SZ) app started: pid \$(cat '$WORK/app.pid')" >> '$WORK/app-events.log'
    ;;
stop)
    if [ -f '$WORK/app.pid' ]; then
        pid="\$(cat '$WORK/app.pid')"
        kill "\$pid" 2>/dev/null || true
        i=0
        # Gone once it has exited: a zombie waiting for init to reap it counts as gone.
        while kill -0 "\$pid" 2>/dev/null && [ "\$(ps -o stat= -p "\$pid" | cut -c1)" != Z ]; do
            i=\$((i + 1)); [ \$i -gt 200 ] && kill -9 "\$pid" 2>/dev/null || true
            sleep 0.05
        done
        rm -f '$WORK/app.pid'
    fi
    echo "\$(date -u +%Y-%m-%dT%H:%M:%SZ) app stopped" >> '$WORK/app-events.log'
    ;;
*)
    echo "usage: \$0 start|stop" >&2; exit 2
    ;;
esac
EOF
chmod 755 "$WORK/app.sh"

HEALTH_URL="http://127.0.0.1:$APP_PORT/healthz"
app_status() { curl -s -o /dev/null -m 3 -w '%{http_code}' "$HEALTH_URL" || true; }
# Logs: the product's own JSON lines (LOG_FORMAT=json), so every line carries its time.
show_log() {  # file label since-epoch: the lines worth reading, with their times
    python3 - "$@" <<'PY'
import json, re, sys
from datetime import datetime, timezone
path, label, since = sys.argv[1], sys.argv[2], float(sys.argv[3])
# The probe loop's every-round line, and the runner's step events (the request's timeline shows those).
dull = ("[Backup] Checking if rollback is needed...",)
step = re.compile(r"^\[Rollback\] .*: (running|succeeded|failed|skipped)( \(.*\))? \[[^\]]+\]$")
keep = ("[", "Application stopped", "Application started", "Verified in", "Restore completed", "Backup created",
        "Backups are not signed", "Application health as this backup begins",
        "The incident is closed", "Watching")
previous = None
for raw in open(path, errors="replace"):
    try:
        line = json.loads(raw)
    except ValueError:
        continue
    moment = datetime.strptime(line["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    message = line.get("message", "")
    if moment.timestamp() < since or message in dull or message == previous or step.match(message):
        continue
    if label == "runner" and not message.startswith(keep):
        continue
    previous = message
    print(f"  {moment:%H:%M:%S}  {label:<8} {message if len(message) <= 170 else message[:167] + '...'}")
PY
}
tails() {
    echo "--- the app's /healthz: $(app_status); app: $(tail -n 3 "$WORK/app-events.log" 2>/dev/null | tr '\n' ' ')"
    for log in sidecar runner; do
        [ -f "$WORK/$log.log" ] && { echo "--- $WORK/$log.log (last lines)"; tail -n 15 "$WORK/$log.log"; }
    done
}
# Polls `condition` (a shell command) every 0.2 s until it succeeds, or fails the demo after `seconds`. Each
# check and each pause runs in the background and is waited for: the `wait` builtin returns at once on Ctrl-C,
# so the INT trap runs, where a foreground child that handles SIGINT itself would make bash ignore it.
wait_for() {  # seconds description condition...
    local seconds="$1" description="$2"; shift 2
    local deadline=$((SECONDS + seconds))
    while true; do
        "$@" &
        if wait $!; then return 0; fi
        if [ $SECONDS -ge $deadline ]; then
            echo "TIMEOUT after ${seconds}s waiting for: $description" >&2
            tails >&2
            exit 1
        fi
        sleep 0.2 &
        wait $!
    done
}
heartbeat() {  # field: prints the sidecar heartbeat's field, or nothing
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]) or "")' \
        "$STATE/state/health/demo-sidecar.json" "$1" 2>/dev/null || true
}
iso_epoch() { [ -n "$1" ] && date -u -d "$1" +%s; }

"$WORK/app.sh" start
app_ok() { [ "$(app_status)" = 200 ]; }
wait_for 20 "the app answers 200" app_ok
echo "$(now) the app runs on 127.0.0.1:$APP_PORT (pid $(cat "$WORK/app.pid")): GET /healthz -> $(curl -s "$HEALTH_URL")"

# Short intervals for the demo (in production: HEALTH_CHECK_INTERVAL=5m, RESTORE_POLL_INTERVAL=10s).
export HEALTH_CHECK_URL="$HEALTH_URL" HEALTH_CHECK_INTERVAL=2s HEALTH_CHECK_FAILURES=3 LOG_FORMAT=json
# The sidecar needs the store, not the database: it does not get the password (its admin API then lists, pins
# and restores, and answers 503 to POST /api/backups). Its API token is a 0600 file, as curl's header is.
( umask 077; openssl rand -hex 32 > "$WORK/api-token"; printf 'X-API-Token: %s\n' "$(cat "$WORK/api-token")" > "$WORK/api-token.header" )
env -u PGPASSWORD SIDECAR_ID=demo-sidecar SIDECAR_BIND=127.0.0.1 SIDECAR_PORT="$SIDECAR_PORT" \
    API_ADMIN_TOKEN_FILE="$WORK/api-token" \
    LIVENESS_FILE="$WORK/sidecar.alive" "$BIN/health-sidecar" --loop > "$WORK/sidecar.log" 2>&1 &
SIDECAR_PID=$!
# The runner: the app stopped and started by the script; data only, since a command cannot tell which version
# of the app runs (with APP_CONTROL=docker or kubernetes the app's version is rolled back with the data).
# No signing key: the safety backup it makes is unsigned (see docs/rollback.md, Health and rollback).
RUNNER_ENV=(SIDECAR_ID=demo-runner LIVENESS_FILE="$WORK/runner.alive" RESTORE_POLL_INTERVAL=1s APP_CONTROL=command
    APP_STOP_COMMAND="$WORK/app.sh stop" APP_START_COMMAND="$WORK/app.sh start" ROLLBACK_DATA_ONLY=true
    ROLLBACK_HEALTH_TIMEOUT=60s RESTORE_TERMINATE_CONNECTIONS=true)
env "${RUNNER_ENV[@]}" "$BIN/restore-job" --loop > "$WORK/runner.log" 2>&1 &
RUNNER_PID=$!
echo "$(now) health-sidecar --loop (pid $SIDECAR_PID) probes $HEALTH_URL every $HEALTH_CHECK_INTERVAL;"
echo "         $HEALTH_CHECK_FAILURES failures in a row open an incident; its own /healthz on 127.0.0.1:$SIDECAR_PORT"
echo "$(now) restore-job --loop (pid $RUNNER_PID) reads the store's requests every second;"
echo "         APP_CONTROL=command: $WORK/app.sh stop|start"
echo "         ROLLBACK_DATA_ONLY=true: a command cannot tell which version of the app runs, so data alone is rolled"
echo "         back; with APP_CONTROL=docker or kubernetes the app's version is rolled back with the data"
probed_healthy() { [ -n "$(heartbeat lastHealthy)" ]; }
wait_for 30 "the sidecar's first healthy probe in its heartbeat" probed_healthy
wait_for 30 "the sidecar's own /healthz" curl -sf -o /dev/null -m 3 "http://127.0.0.1:$SIDECAR_PORT/healthz"
runner_alive() { [ -f "$STATE/state/runners/demo-runner.json" ]; }
wait_for 30 "the runner's first poll" runner_alive
echo "$(now) heartbeat: last probe $(heartbeat lastProbe), last healthy $(heartbeat lastHealthy)"
echo "$(now) the sidecar's /healthz: $(curl -s "http://127.0.0.1:$SIDECAR_PORT/healthz")"

say "backup-job while the app is healthy"
# A simple command's redirection, not a function's: the INT trap's lines must reach the terminal, not this log.
status=0
BACKUP_SIGNING_KEY_FILE="$WORK/keys/signing.pem" "$BIN/backup-job" > "$WORK/backup-2.log" 2>&1 || status=$?
[ $status -eq 0 ] || { cat "$WORK/backup-2.log"; exit $status; }
python3 - "$WORK/backup-2.log" <<'PY'
import json, sys
for raw in open(sys.argv[1]):
    try:
        print(" ", json.loads(raw)["message"])
    except (ValueError, KeyError):
        print(" ", raw.rstrip())
PY
TARGET="$(cd "$BACKUP_DIR" && ls -1 visual_backup_*.tar.gz | sort | tail -n 1)"
say "The admin API, as the runbook's curl: GET /api/backups"
echo "  curl -X GET http://127.0.0.1:$SIDECAR_PORT/api/backups -H \"X-API-Token: \$API_ADMIN_TOKEN\""
curl -s -H @"$WORK/api-token.header" "http://127.0.0.1:$SIDECAR_PORT/api/backups" > "$WORK/api-list.json"
python3 - "$WORK/api-list.json" <<'PY'
import json, sys
answer = json.load(open(sys.argv[1]))
print("  success: %s, count: %s" % (answer["success"], answer["count"]))
for backup in answer["backups"]:
    keys = ("filename", "size", "sizeFormatted", "created", "age", "signed", "kind")
    print("  ", json.dumps({key: backup.get(key) for key in keys}))
PY
python3 - "$BACKUP_DIR/$TARGET.json" <<'PY'
import json, sys
health = json.load(open(sys.argv[1])).get("health") or {}  # the manifest: the metadata's keys and the archive's
print(f"  {sys.argv[1].rsplit('/', 1)[-1]}: metadata health {json.dumps(health)}")
if health.get("state") != "healthy":
    sys.exit("the backup should record the app as healthy")
PY
# The name's time (UTC) is the one the target rule compares with the last healthy probe.
BACKUP_TIME="$(echo "$TARGET" | sed -E 's/^visual_backup_([0-9-]+)_([0-9]+)-([0-9]+)-([0-9]+).*/\1 \2:\3:\4/')"
BACKUP_EPOCH="$(date -u +%s -d "$BACKUP_TIME")"
healthy_after_backup() {
    local last
    last="$(heartbeat lastHealthy)"
    [ -n "$last" ] && [ "$(iso_epoch "$last")" -gt "$BACKUP_EPOCH" ]
}
wait_for 30 "a healthy probe after the backup (a rollback target must precede the last healthy probe)" \
    healthy_after_backup
echo "$(now) a healthy probe followed the backup ($(heartbeat lastHealthy)): $TARGET qualifies as a rollback target"
BEFORE="$(fingerprint)"
echo "$BEFORE" | sed 's/^/  /'

say "A failed deploy: its migration drops a table, a cleanup deletes the avatars, the .env changes"
DEPLOY_EPOCH="$(date -u +%s)"
echo "$(now) deploy"
psql -qX -d visual_db -c "DROP TABLE posts" -c "UPDATE users SET name = 'v2 ' || name WHERE id <= 250"
rm -rf "$APP/uploads/avatars"
echo "FEATURE_FLAGS=v2" >> "$APP/.env"
echo "$(now) GET /healthz -> HTTP $(app_status) $(curl -s "$HEALTH_URL")"
fingerprint | sed 's/^/  /'

say "Nobody touches anything now: the sidecar notices, the runner rolls back"
request_file() { ls -1 "$STATE/requests"/rollback-*.json 2>/dev/null | head -n 1; }
request_field() {  # field: prints the request's field, or nothing
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]) or "")' \
        "$(request_file)" "$1" 2>/dev/null || true
}
requested() { [ -n "$(request_file)" ]; }
wait_for 60 "the sidecar's rollback request after $HEALTH_CHECK_FAILURES failed probes" requested
echo "$(now) rollback requested: $(request_file | xargs -r basename) ($(request_field status))"
finished() { case "$(request_field status)" in pending | running | "") return 1 ;; *) return 0 ;; esac; }
wait_for 120 "the rollback to end" finished
echo "$(now) the rollback ended: $(request_field status)"
if [ "$(request_field status)" != succeeded ]; then
    echo "The rollback did not succeed: $(request_field reason)"
    tails
    exit 1
fi
HEALED_EPOCH="$(date -u +%s)"

say "What happened, from the store's request ($(request_file | xargs basename)) and the logs"
python3 - "$(request_file)" <<'PY'
import json, sys
from datetime import datetime, timezone
def at(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc) if text else None
request = json.load(open(sys.argv[1]))
incident = request.get("incident") or {}
opened = at(incident.get("opened"))
print(f"  {request['id']}: {request['status']}, requested by {request['requestedBy']}, run by {request.get('worker')}")
print(f"  incident: {incident.get('failures')} failed probes (last: {incident.get('lastResult')}); "
      f"last healthy {at(incident.get('lastHealthy')):%H:%M:%S}; opened {opened:%H:%M:%S}")
print(f"  {'started':<9} {'ended':<9} {'took':>5}  step (times to the second, as the request records them)")
healthy = None
for step in request.get("steps") or []:
    started, ended = at(step["started"]), at(step.get("ended"))
    took = f"{(ended - started).total_seconds():.0f}s" if ended else ""
    detail = step.get("detail") or ""
    if len(detail) > 110:
        detail = detail[:107] + "..."
    line = f"  {started:%H:%M:%S}  {ended:%H:%M:%S}  {took:>5}  {step['name']}: {step['status']}"
    print(line + (f" ({detail})" if detail else ""))
    if step["name"] == "health check" and step["status"] == "succeeded":
        healthy = ended
print(f"  reason: {request.get('reason')}")
if opened and healthy:
    print(f"  From the third failed probe to healthy: {(healthy - opened).total_seconds():.0f} s")
PY
echo
echo "  Log lines of the sidecar and the runner from the deploy on (the steps above and the restore's details left out):"
{
    show_log "$WORK/sidecar.log" sidecar "$((DEPLOY_EPOCH - 1))"
    show_log "$WORK/runner.log" runner "$((DEPLOY_EPOCH - 1))"
} | sort -s -k1,1
echo
sed 's/^/  app script: /' "$WORK/app-events.log"

say "Proof"
AFTER="$(fingerprint)"
echo "$AFTER"
same_or_fail "$BEFORE" "$AFTER" \
    "The pre-deploy data came back: database rows, uploads and .env are identical to the backup's."
wait_for 10 "the app answers 200" app_ok
echo "$(now) GET /healthz -> HTTP $(app_status) $(curl -s "$HEALTH_URL")"

say "The broken state is kept: the safety backup"
python3 - "$BACKUP_DIR" <<'PY'
import glob, json, os, sys
found = False
for path in sorted(glob.glob(os.path.join(sys.argv[1], "visual_backup_*.json"))):
    manifest = json.load(open(path))
    kind = manifest.get("kind") or "backup"
    signed = "signed" if manifest.get("signature") else "unsigned"
    print(f"  {os.path.basename(path)[:-5]}  kind {kind:<7} {signed:<8} database {manifest.get('database')}")
    found = found or kind == "safety"
if not found:
    sys.exit("no safety backup")
PY
echo "  (the safety backup holds the broken state: never a rollback target; restore it by name to look at it."
echo "   It is unsigned: the runner has no signing key, which stays with backup-job; see docs/rollback.md, Health and rollback)"

say "restore-job --plan: what a rollback would do now (changes nothing)"
env "${RUNNER_ENV[@]}" LOG_FORMAT=text "$BIN/restore-job" --plan | sed 's/^/  /'
echo
echo "Done in $((HEALED_EPOCH - DEPLOY_EPOCH)) s from the failed deploy to a healthy app, unattended."
