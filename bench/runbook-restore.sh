#!/usr/bin/env bash
# The runbook's restore procedure as its shell script did it, the baseline restore-job is compared against:
# untar the archive into a staging folder, pg_restore --clean --if-exists into the database (one job, the dump
# decompressed as it is read), untar uploads.tar.gz over the uploads folder's parent, copy .env.backup back.
# Usage: runbook-restore.sh ARCHIVE. Same variables as restore-job: BACKUP_DIR, DATABASE_NAME, DATABASE_USER
# (libpq's PG* too), UPLOADS_DIR, ENV_FILE.
set -euo pipefail
ARCHIVE="$1"
BACKUP_DIR="${BACKUP_DIR:-/backups}"
DATABASE_NAME="${DATABASE_NAME:-visual_db}"
UPLOADS_DIR="${UPLOADS_DIR:-/app/uploads}"
ENV_FILE="${ENV_FILE:-/app/.env}"
NAME="$(basename "$ARCHIVE" .tar.gz)"
STAGING="$(mktemp -d "${BACKUP_DIR}/restore.XXXXXX")"
trap 'rm -rf "$STAGING"' EXIT

tar xzf "$ARCHIVE" -C "$STAGING"
pg_restore ${DATABASE_USER:+-U "$DATABASE_USER"} -d "$DATABASE_NAME" --clean --if-exists "$STAGING/$NAME/database.dump"
tar xzf "$STAGING/$NAME/uploads.tar.gz" -C "$(dirname "$UPLOADS_DIR")"
cp "$STAGING/$NAME/.env.backup" "$ENV_FILE"
