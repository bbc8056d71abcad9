#!/usr/bin/env python3
"""A stand-in for the application Contingency protects (Python 3, standard library only, and psql), for the
compose example (this folder's Dockerfile), the health sidecar's and the rollback's tests and the demo. It runs as its own process and is healthy only when its data
is there, the way the real application is:

    GET /healthz   200 {"status":"ok",...} when FIXTURE_QUERY (default: SELECT count(*) FROM users) succeeds
                   through `psql -AtX` (connection from the PG* variables, PGDATABASE) and the file
                   FIXTURE_UPLOADS/FIXTURE_REQUIRED_FILE is readable; else 500 {"status":"error","reason":...}
    GET /          a small HTML page with the query's result and the number of files in the uploads

A failed deploy (a dropped table, deleted uploads) makes it unhealthy; a restore makes it healthy again.

Scripted mode, for tests that need health to change on cue: with --status-file PATH, /healthz answers the
statuses listed in that file (integers separated by commas or spaces), one per request, each request consuming
the first; the last one stays once it is alone. The database and uploads are not looked at. A test rewrites the
file to change what comes next.

    app.py [--port 0] [--status-file PATH] [-v]

The port also comes from FIXTURE_PORT (default 0: the kernel picks one), the address from FIXTURE_BIND (default
127.0.0.1; 0.0.0.0 in a container). Once listening it prints one line "listening on PORT" to standard output. With
-v it logs each request to standard error. SIGTERM stops it at once.

PGPASSWORD_FILE (a secret file, as compose and Kubernetes mount them) gives psql its password through the
environment. FIXTURE_STARTUP_SQL, when set, is run once at start (retried while the database is not up yet), as a
deploy's migration would be: the example's "broken release" image drops a table with it.
"""

import argparse
import html
import json
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERBOSE = False
STATUS_LOCK = threading.Lock()


def psql_command():
    bin_dir = os.environ.get("PG_BIN_DIR")
    return os.path.join(bin_dir, "psql") if bin_dir else "psql"


def psql_environment():
    environment = dict(os.environ, PGCONNECT_TIMEOUT="10")
    password_file = os.environ.get("PGPASSWORD_FILE")
    if password_file and "PGPASSWORD" not in os.environ:
        with open(password_file) as handle:
            environment["PGPASSWORD"] = handle.read().strip()
    return environment


def run_query(query=None):
    """(ok, result or reason)"""
    query = query or os.environ.get("FIXTURE_QUERY", "SELECT count(*) FROM users")
    try:
        done = subprocess.run(
            [psql_command(), "-AtX", "-v", "ON_ERROR_STOP=1", "-c", query],
            capture_output=True, text=True, timeout=15, env=psql_environment())
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"psql: {error}"
    if done.returncode != 0:
        # psql's ERROR line, not the caret line that may follow it.
        lines = done.stderr.strip().splitlines() or ["?"]
        return False, "query failed: " + next((line for line in lines if line.startswith("ERROR:")), lines[-1])
    return True, done.stdout.strip()


def check_uploads():
    """(ok, number of files or reason)"""
    uploads = os.environ.get("FIXTURE_UPLOADS")
    if not uploads:
        return False, "FIXTURE_UPLOADS is not set"
    required = os.environ.get("FIXTURE_REQUIRED_FILE")
    if required:
        path = os.path.join(uploads, required)
        try:
            with open(path, "rb") as handle:
                handle.read(1)
        except OSError as error:
            return False, f"{required} is not readable: {error.strerror}"
    count = 0
    for _, _, files in os.walk(uploads):
        count += len(files)
    return True, count


def next_scripted_status(path):
    with STATUS_LOCK:
        try:
            with open(path) as handle:
                statuses = [int(word) for word in handle.read().replace(",", " ").split()]
        except (OSError, ValueError):
            return 500
        if not statuses:
            return 500
        status = statuses[0]
        if len(statuses) > 1:
            with open(path + ".tmp", "w") as handle:
                handle.write(" ".join(str(value) for value in statuses[1:]))
            os.replace(path + ".tmp", path)
        return status


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    status_file = None

    def log_message(self, format, *args):
        if VERBOSE:
            sys.stderr.write("%s %s\n" % (self.address_string(), format % args))

    def send(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.split("?")[0] == "/healthz":
            if self.status_file:
                status = next_scripted_status(self.status_file)
                self.send(status, json.dumps({"status": "ok" if status == 200 else "error", "scripted": status}))
                return
            db_ok, rows = run_query()
            files_ok, files = check_uploads()
            if db_ok and files_ok:
                self.send(200, json.dumps({"status": "ok", "rows": rows, "files": files}))
            else:
                reason = "; ".join(str(part) for ok, part in ((db_ok, rows), (files_ok, files)) if not ok)
                self.send(500, json.dumps({"status": "error", "reason": reason}))
        elif self.path.split("?")[0] == "/":
            db_ok, rows = run_query()
            files_ok, files = check_uploads()
            page = (
                "<!doctype html><title>Fixture application</title><h1>Fixture application</h1>"
                f"<p>Query: {html.escape(str(rows))}{'' if db_ok else ' (failing)'}</p>"
                f"<p>Uploads: {html.escape(str(files))}{' files' if files_ok else ' (failing)'}</p>")
            self.send(200 if db_ok and files_ok else 500, page, "text/html; charset=utf-8")
        else:
            self.send(404, json.dumps({"status": "error", "reason": "not found"}))


def run_startup_sql(sql, attempts=60):
    """Runs `sql` once, waiting up to a minute for the database to accept connections."""
    for attempt in range(attempts):
        ok, reason = run_query(sql)
        if ok:
            sys.stderr.write("startup SQL done\n")
            return
        if "could not connect" not in reason and "the database system is starting up" not in reason:
            sys.stderr.write(f"startup SQL failed: {reason}\n")
            return
        threading.Event().wait(1)
    sys.stderr.write("startup SQL not run: the database never answered\n")


def main():
    global VERBOSE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("FIXTURE_PORT", "0")))
    parser.add_argument("--status-file")
    parser.add_argument("-v", action="store_true")
    arguments = parser.parse_args()
    VERBOSE = arguments.v
    Handler.status_file = arguments.status_file
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    startup_sql = os.environ.get("FIXTURE_STARTUP_SQL")
    if startup_sql:
        run_startup_sql(startup_sql)
    server = ThreadingHTTPServer((os.environ.get("FIXTURE_BIND", "127.0.0.1"), arguments.port), Handler)
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
