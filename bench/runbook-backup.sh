#!/usr/bin/env bash
# The runbook's backup procedure as its shell script did it, kept as the baseline the benchmark compares
# against and as the producer of "legacy" archives that restore-job must still read:
#   pg_dump -Fc to a file, tar czf uploads.tar.gz, copy .env as .env.backup, package.json and its lock,
#   write metadata.json, then tar czf the whole staging folder (everything compressed a second time).
# Same variables as backup-job: BACKUP_DIR, DATABASE_NAME, DATABASE_USER (libpq's PG* too), UPLOADS_DIR,
# ENV_FILE, APP_DIR.
set -euo pipefail
BACKUP_DIR="${BACKUP_DIR:-/backups}"
DATABASE_NAME="${DATABASE_NAME:-visual_db}"
UPLOADS_DIR="${UPLOADS_DIR:-/app/uploads}"
ENV_FILE="${ENV_FILE:-/app/.env}"
APP_DIR="${APP_DIR:-/app}"
TIMESTAMP="$(date -u +%Y-%m-%d_%H-%M-%S)"
NAME="visual_backup_${TIMESTAMP}"
STAGING="${BACKUP_DIR}/${NAME}"

mkdir -p "$STAGING"
pg_dump ${DATABASE_USER:+-U "$DATABASE_USER"} -d "$DATABASE_NAME" -Fc -f "$STAGING/database.dump"
tar czf "$STAGING/uploads.tar.gz" -C "$(dirname "$UPLOADS_DIR")" "$(basename "$UPLOADS_DIR")"
cp "$ENV_FILE" "$STAGING/.env.backup"
cp "$APP_DIR/package.json" "$STAGING/" 2>/dev/null || true
cp "$APP_DIR/package-lock.json" "$STAGING/" 2>/dev/null || true
cat > "$STAGING/metadata.json" <<JSON
{
  "timestamp": "${TIMESTAMP}",
  "database": "${DATABASE_NAME}",
  "version": "$(sed -n 's/.*"version" *: *"\([^"]*\)".*/\1/p' "$APP_DIR/package.json" 2>/dev/null | head -1)",
  "node_version": "${NODE_VERSION:-}",
  "backup_size": "$(du -sh "$STAGING" | cut -f1)"
}
JSON
tar czf "${BACKUP_DIR}/${NAME}.tar.gz" -C "$BACKUP_DIR" "$NAME"
rm -rf "$STAGING"
echo "${BACKUP_DIR}/${NAME}.tar.gz"
