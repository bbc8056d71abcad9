#!/usr/bin/env python3
"""A webhook and ping receiver on 127.0.0.1 that records what it is sent (Python 3, standard library only).

Started by Tests/TestSupport/WebhookReceiver.swift:

    webhook_receiver.py

Listens on 127.0.0.1 on a port the kernel picks and prints "listening on 127.0.0.1:PORT" to standard output,
then one line per request it receives, before answering it:

    request {"method": "POST", "path": "/hooks/T000/B000/secret", "contentType": "...", "body": "...",
             "received": seconds since 1970}

How it answers depends on the path's first segment, so one receiver serves every behaviour a test needs:

    /status/<code>/...   answers <code> (e.g. 500, 429, 404) with a short text body (a 429 with Retry-After: 1)
    /hang/...            never answers: holds the connection until the client gives up or the server stops
    /delay/<ms>/...      answers 200 after <ms> milliseconds (a slow but working destination)
    anything else        200 "ok" (Slack's answer)
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STOP = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        sys.stderr.write("webhook_receiver: " + (format % args) + "\n")

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        record = {
            "method": self.command,
            "path": self.path,
            "contentType": self.headers.get("Content-Type") or "",
            "body": body.decode("utf-8", errors="replace"),
            "received": time.time(),
        }
        sys.stdout.write("request " + json.dumps(record) + "\n")
        sys.stdout.flush()
        parts = self.path.split("/")
        if len(parts) > 1 and parts[1] == "hang":
            STOP.wait()
            return
        if len(parts) > 2 and parts[1] == "delay" and parts[2].isdigit():
            time.sleep(int(parts[2]) / 1000)
        status = 200
        if len(parts) > 2 and parts[1] == "status" and parts[2].isdigit():
            status = int(parts[2])
        answer = b"ok" if status < 400 else ("error %d" % status).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        if status == 429:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = handle_any
    do_POST = handle_any
    do_HEAD = handle_any


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    sys.stdout.write("listening on 127.0.0.1:%d\n" % server.server_address[1])
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        STOP.set()


if __name__ == "__main__":
    main()
