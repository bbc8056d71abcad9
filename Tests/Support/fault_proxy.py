#!/usr/bin/env python3
"""A fault-injecting HTTP/1.1 proxy for the S3 storage tests (Python 3.11, standard library only).

It listens on 127.0.0.1 and relays every request to one upstream server (moto) unchanged,
except for the faults it is told to inject. The Host header and every other request header are
passed on unchanged (a SigV4 signature covers the Host the client connected to), so a signed
request stays valid through the proxy unless a fault removes a signed header.

Each request goes upstream on a new connection, closed after the response. The client's
connection is kept alive between requests whenever the response's framing allows it (the
response's hop-by-hop Connection header is replaced accordingly: moto's server closes every
connection, S3 does not), so the client's connection reuse is exercised too. Request bodies are
framed by Content-Length (or chunked); responses by Content-Length, chunked, or end of stream;
HEAD, 1xx, 204 and 304 responses have none. A request with "Expect: 100-continue" gets the
proxy's own 100 Continue (the upstream's is dropped).

Started by Tests/TestSupport/FaultProxy.swift:

    fault_proxy.py --upstream-port 5000 [--upstream-host 127.0.0.1] [--port 0] [-v]

Once it listens it prints one line "listening on 127.0.0.1:PORT" to standard output. With -v it
logs each request and what it did with it to standard error; otherwise it logs nothing.

Control API (answered by the proxy itself, never forwarded, not counted in the statistics):

    POST /__proxy__/faults   body: the configuration below; replaces the current one.
    GET  /__proxy__/faults   the current configuration, with the counts still left.
    GET  /__proxy__/stats    {"requests": n, "faultsInjected": n, "forwarded": n,
                              "conditionalHeadersStripped": n}

The configuration:

    {"rules": [RULE, ...], "stripConditionalHeaders": false}

    RULE = {"action": "status", "status": 503, "errorCode": "SlowDown", "closeConnection": false}
         | {"action": "cut", "part": "request" | "response", "afterBytes": 1000}
         | {"action": "stall", "seconds": 5.0}
      plus, for every action: "count": N (the next N matching requests) or null or absent (all),
      "method": "PUT" (optional, exact), "target": "partNumber=" (optional, a substring of the
      request target).

For each request the first rule that matches and has a count left applies (and its count goes
down by one); a request no rule matches is forwarded. The actions:

- status: answers with that status and an S3 error document (<Error><Code>…), without
  forwarding. The request body is read and dropped first, so the connection stays usable
  (keep-alive) unless the client asked to close, closeConnection is true, or the client sent
  "Expect: 100-continue" (then the body is never sent and the connection is closed).
- cut: forwards the request; with part "request" only its head and the first afterBytes bytes of
  its body reach the upstream, with part "response" the response head and the first afterBytes
  bytes of its body (as sent on the wire, chunk framing included) reach the client. Then both
  connections are closed, so the client sees a reset or a short transfer. When the body is
  shorter than afterBytes, all of it passes and the connections are closed right after it (for
  part "request" once the upstream has answered, so has carried the request out, but before any
  response byte reaches the client: an answer lost).
- stall: reads the request, forwards nothing and sends nothing for that many seconds, then
  closes the connection (a client's low-speed or response timeout should fire first).

stripConditionalHeaders removes If-None-Match, If-Match, If-Modified-Since and
If-Unmodified-Since from every forwarded request, as an S3-compatible server that ignores
conditional requests would. Those headers are part of a SigV4 signature when the client sends
them, so upstream signature verification must be off while stripping.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import socketserver
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

CONTROL_PREFIX = "/__proxy__/"
CONDITIONAL_HEADERS = {"if-none-match", "if-match", "if-modified-since", "if-unmodified-since"}
MAX_HEAD_BYTES = 64 * 1024
COPY_CHUNK = 64 * 1024
UPSTREAM_TIMEOUT_SECONDS = 120.0
REASONS = {
    200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
    412: "Precondition Failed", 429: "Too Many Requests", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}
DEFAULT_ERROR_CODES = {500: "InternalError", 503: "SlowDown", 504: "GatewayTimeout", 429: "SlowDown"}

verbose = False


def log(message: str) -> None:
    if verbose:
        print(f"fault_proxy: {message}", file=sys.stderr, flush=True)


class ConnectionClosed(Exception):
    """The peer closed the connection (or it broke) where more bytes were expected."""


class CutConnection(Exception):
    """A cut fault fired: both connections must be closed at once."""


# MARK: - Configuration and statistics


@dataclass
class Rule:
    action: str
    count: int | None
    method: str | None
    target: str | None
    status: int = 503
    error_code: str = "SlowDown"
    close_connection: bool = False
    part: str = "request"
    after_bytes: int = 0
    seconds: float = 0.0

    @staticmethod
    def parse(value: dict[str, Any]) -> "Rule":
        action = value.get("action")
        if action not in ("status", "cut", "stall"):
            raise ValueError(f"unknown action {action!r} (expected status, cut or stall)")
        count = value.get("count")
        if count is not None and (not isinstance(count, int) or count < 0):
            raise ValueError(f"count must be a non-negative integer or null, not {count!r}")
        rule = Rule(action=action, count=count, method=value.get("method"), target=value.get("target"))
        if action == "status":
            rule.status = int(value.get("status", 503))
            rule.error_code = str(value.get("errorCode") or DEFAULT_ERROR_CODES.get(rule.status, "ServiceUnavailable"))
            rule.close_connection = bool(value.get("closeConnection", False))
        elif action == "cut":
            rule.part = value.get("part", "request")
            if rule.part not in ("request", "response"):
                raise ValueError(f"part must be request or response, not {rule.part!r}")
            rule.after_bytes = int(value.get("afterBytes", 0))
            if rule.after_bytes < 0:
                raise ValueError("afterBytes must not be negative")
        else:
            rule.seconds = float(value.get("seconds", 0))
        return rule

    def matches(self, method: str, target: str) -> bool:
        if self.count == 0:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.target is None or self.target in target

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {"action": self.action, "count": self.count, "method": self.method,
                                 "target": self.target}
        if self.action == "status":
            value.update(status=self.status, errorCode=self.error_code, closeConnection=self.close_connection)
        elif self.action == "cut":
            value.update(part=self.part, afterBytes=self.after_bytes)
        else:
            value.update(seconds=self.seconds)
        return value


@dataclass
class State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    rules: list[Rule] = field(default_factory=list)
    strip_conditional_headers: bool = False
    requests: int = 0
    faults_injected: int = 0
    forwarded: int = 0
    conditional_headers_stripped: int = 0

    def configure(self, body: bytes) -> None:
        value = json.loads(body.decode("utf-8") or "{}")
        if not isinstance(value, dict):
            raise ValueError("the configuration must be a JSON object")
        rules = [Rule.parse(rule) for rule in value.get("rules", [])]
        strip = bool(value.get("stripConditionalHeaders", False))
        with self.lock:
            self.rules = rules
            self.strip_conditional_headers = strip

    def configuration(self) -> dict[str, Any]:
        with self.lock:
            return {"rules": [rule.to_json() for rule in self.rules],
                    "stripConditionalHeaders": self.strip_conditional_headers}

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {"requests": self.requests, "faultsInjected": self.faults_injected,
                    "forwarded": self.forwarded, "conditionalHeadersStripped": self.conditional_headers_stripped}

    def take_rule(self, method: str, target: str) -> tuple[Rule | None, bool]:
        """Counts the request and returns the rule that applies to it (its count taken) and whether
        conditional headers are to be stripped."""
        with self.lock:
            self.requests += 1
            for rule in self.rules:
                if rule.matches(method, target):
                    if rule.count is not None:
                        rule.count -= 1
                    self.faults_injected += 1
                    return rule, self.strip_conditional_headers
            return None, self.strip_conditional_headers

    def count(self, name: str, amount: int = 1) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + amount)


STATE = State()


# MARK: - HTTP framing


class Reader:
    """Buffered reads from a socket."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(COPY_CHUNK)
        except OSError:
            data = b""
        if not data:
            return False
        self.buffer += data
        return True

    def read_head(self) -> bytes | None:
        """The bytes up to and including the blank line ending a message head; None on a clean EOF
        before any byte of it."""
        while b"\r\n\r\n" not in self.buffer:
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise ConnectionClosed("message head too large")
            if not self._fill():
                if self.buffer.strip():
                    raise ConnectionClosed("connection closed inside a message head")
                return None
        end = self.buffer.index(b"\r\n\r\n") + 4
        head, self.buffer = self.buffer[:end], self.buffer[end:]
        return head

    def read_line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            if not self._fill():
                raise ConnectionClosed("connection closed inside a chunked body")
        end = self.buffer.index(b"\r\n") + 2
        line, self.buffer = self.buffer[:end], self.buffer[end:]
        return line

    def read_some(self, limit: int) -> bytes:
        """Up to `limit` bytes (at least one), or b"" at EOF."""
        if not self.buffer and not self._fill():
            return b""
        data, self.buffer = self.buffer[:limit], self.buffer[limit:]
        return data


@dataclass
class Head:
    raw: bytes
    start_line: str
    headers: list[tuple[str, str]]

    @staticmethod
    def parse(raw: bytes) -> "Head":
        lines = raw.decode("latin-1").split("\r\n")
        headers = []
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        return Head(raw=raw, start_line=lines[0], headers=headers)

    def get(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def has_token(self, name: str, token: str) -> bool:
        value = self.get(name)
        return value is not None and token in [part.strip().lower() for part in value.split(",")]

    def adding(self, name: str, value: str) -> bytes:
        """This head's bytes with one more header line."""
        return self.raw[:-2] + f"{name}: {value}\r\n\r\n".encode("latin-1")

    def without(self, names: set[str]) -> tuple["Head", int]:
        """This head without the named headers (lower case), and how many were removed."""
        lines = self.raw.decode("latin-1").split("\r\n")
        kept = [lines[0]]
        removed = 0
        for line in lines[1:]:
            if line and line.partition(":")[0].strip().lower() in names:
                removed += 1
            elif line:
                kept.append(line)
        raw = ("\r\n".join(kept) + "\r\n\r\n").encode("latin-1")
        return Head.parse(raw), removed


class Body:
    """How a message body is delimited."""

    NONE, LENGTH, CHUNKED, UNTIL_CLOSE = range(4)

    def __init__(self, kind: int, length: int = 0):
        self.kind = kind
        self.length = length

    @staticmethod
    def of_request(head: Head) -> "Body":
        if head.has_token("Transfer-Encoding", "chunked"):
            return Body(Body.CHUNKED)
        length = head.get("Content-Length")
        return Body(Body.LENGTH, int(length)) if length else Body(Body.NONE)

    @staticmethod
    def of_response(head: Head, request_method: str) -> "Body":
        status = int(head.start_line.split(" ")[1])
        if request_method.upper() == "HEAD" or 100 <= status < 200 or status in (204, 304):
            return Body(Body.NONE)
        if head.has_token("Transfer-Encoding", "chunked"):
            return Body(Body.CHUNKED)
        length = head.get("Content-Length")
        return Body(Body.LENGTH, int(length)) if length is not None else Body(Body.UNTIL_CLOSE)


def copy_body(body: Body, source: Reader, destination: Callable[[bytes], None] | None, limit: int | None) -> None:
    """Copies a body as it is on the wire (chunk framing included) from `source` to `destination`
    (a socket's sendall; the body is dropped when it is None). With a `limit`, raises CutConnection
    once that many bytes have been copied."""
    sent = 0

    def emit(data: bytes) -> None:
        nonlocal sent
        if limit is not None and sent + len(data) >= limit:
            if destination is not None:
                destination(data[: limit - sent])
            raise CutConnection()
        if destination is not None:
            destination(data)
        sent += len(data)

    if limit == 0 and body.kind != Body.NONE:
        raise CutConnection()
    if body.kind == Body.NONE:
        return
    if body.kind == Body.LENGTH:
        remaining = body.length
        while remaining > 0:
            data = source.read_some(min(remaining, COPY_CHUNK))
            if not data:
                raise ConnectionClosed(f"connection closed with {remaining} body bytes outstanding")
            remaining -= len(data)
            emit(data)
    elif body.kind == Body.CHUNKED:
        while True:
            line = source.read_line()
            emit(line)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, up to the blank line
                    trailer = source.read_line()
                    emit(trailer)
                    if trailer == b"\r\n":
                        return
            remaining = size + 2  # the chunk and its CRLF
            while remaining > 0:
                data = source.read_some(min(remaining, COPY_CHUNK))
                if not data:
                    raise ConnectionClosed("connection closed inside a chunk")
                remaining -= len(data)
                emit(data)
    else:
        while data := source.read_some(COPY_CHUNK):
            emit(data)


def error_response(status: int, code: str, message: str, close: bool, head_only: bool) -> bytes:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<RequestId>fault-proxy</RequestId></Error>"
    ).encode()
    lines = [
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}",
        "Content-Type: application/xml",
        f"Content-Length: {len(body)}",
        "x-amz-request-id: fault-proxy",
        f"Connection: {'close' if close else 'keep-alive'}",
    ]
    if status in (503, 429):
        lines.append("Retry-After: 1")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return head if head_only else head + body


def json_response(status: int, value: Any, close: bool) -> bytes:
    body = json.dumps(value).encode()
    head = (
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: {'close' if close else 'keep-alive'}\r\n\r\n"
    )
    return head.encode() + body


# MARK: - Connections


class Handler(socketserver.BaseRequestHandler):
    upstream: tuple[str, int] = ("127.0.0.1", 0)

    def handle(self) -> None:
        client: socket.socket = self.request
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = Reader(client)
        try:
            while True:
                raw = reader.read_head()
                if raw is None:
                    return
                head = Head.parse(raw)
                if not self.serve(head, reader, client):
                    return
        except (ConnectionClosed, CutConnection, OSError) as error:
            log(f"connection ended: {error!r}")
        finally:
            try:
                client.close()
            except OSError:
                pass

    def serve(self, head: Head, reader: Reader, client: socket.socket) -> bool:
        """Handles one request; returns whether the client connection stays open."""
        parts = head.start_line.split(" ")
        if len(parts) != 3:
            client.sendall(error_response(400, "BadRequest", "malformed request line", True, False))
            return False
        method, target, version = parts
        wants_close = head.has_token("Connection", "close") or (
            version == "HTTP/1.0" and not head.has_token("Connection", "keep-alive"))
        request_body = Body.of_request(head)

        if target.startswith(CONTROL_PREFIX):
            return self.control(method, target, head, request_body, reader, client, wants_close)

        rule, strip = STATE.take_rule(method, target)
        log(f"{method} {target} -> {rule.to_json() if rule else 'forward'}")
        expects_continue = head.has_token("Expect", "100-continue")

        if rule is not None and rule.action == "status":
            close = wants_close or rule.close_connection or expects_continue
            if not expects_continue:
                copy_body(request_body, reader, None, None)
            client.sendall(error_response(rule.status, rule.error_code,
                                          "Fault injected by the test proxy.", close, method == "HEAD"))
            return not close

        if expects_continue:
            # The body is needed (forwarded or stalled on); the upstream's own 100 is dropped below.
            client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

        if rule is not None and rule.action == "stall":
            copy_body(request_body, reader, None, None)
            time.sleep(rule.seconds)
            return False

        if strip:
            head, removed = head.without(CONDITIONAL_HEADERS)
            if removed:
                STATE.count("conditional_headers_stripped", removed)
        cut_request = rule.after_bytes if rule is not None and rule.part == "request" else None
        cut_response = rule.after_bytes if rule is not None and rule.part == "response" else None
        return self.forward(method, head, request_body, reader, client, cut_request, cut_response, wants_close)

    def forward(self, method: str, head: Head, request_body: Body, reader: Reader, client: socket.socket,
                cut_request: int | None, cut_response: int | None, wants_close: bool) -> bool:
        try:
            upstream = socket.create_connection(self.upstream, timeout=UPSTREAM_TIMEOUT_SECONDS)
        except OSError as error:
            copy_body(request_body, reader, None, None)
            client.sendall(error_response(502, "BadGateway", f"upstream unreachable: {error}", True, False))
            return False
        try:
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            upstream.sendall(head.raw)
            STATE.count("forwarded")
            copy_body(request_body, reader, upstream.sendall, cut_request)
            if cut_request is not None:
                # A request shorter than the limit went through whole; the response is cut instead, once the
                # server has answered (so has applied the request): an answer lost, not a request that may or
                # may not have been applied, depending on when the server noticed the closed connection.
                answer = Reader(upstream)
                try:
                    while (raw := answer.read_head()) is not None and 100 <= int(raw.split(b" ")[1]) < 200:
                        pass  # an interim 100 Continue: the final answer follows
                except (ConnectionClosed, OSError):
                    pass  # no answer came: the connections are closed all the same
                raise CutConnection()
            upstream_reader = Reader(upstream)
            while True:
                raw = upstream_reader.read_head()
                if raw is None:
                    raise ConnectionClosed("upstream closed without a response")
                response = Head.parse(raw)
                status = int(response.start_line.split(" ")[1])
                if not 100 <= status < 200 or status == 101:
                    break
                # An interim 100 Continue: the client got its own from us already.
            response_body = Body.of_response(response, method)
            # Connection is hop-by-hop: the upstream hop is closed after each response anyway (moto's
            # server closes every connection), while the client's stays open whenever its framing
            # allows, as S3's does.
            keep_alive = not wants_close and response_body.kind != Body.UNTIL_CLOSE
            response, _ = response.without({"connection", "keep-alive"})
            client.sendall(response.adding("Connection", "keep-alive" if keep_alive else "close"))
            copy_body(response_body, upstream_reader, client.sendall, cut_response)
            if cut_response is not None:
                # A response shorter than the limit still ends the connection: the fault was applied.
                raise CutConnection()
            return keep_alive
        finally:
            upstream.close()

    def control(self, method: str, target: str, head: Head, body: Body, reader: Reader,
                client: socket.socket, close: bool) -> bool:
        path = target[len(CONTROL_PREFIX):].split("?")[0]
        collected = bytearray()
        copy_body(body, reader, collected.extend, None)
        try:
            if path == "faults" and method == "POST":
                STATE.configure(bytes(collected))
                log(f"configured: {STATE.configuration()}")
                answer = json_response(200, STATE.configuration(), close)
            elif path == "faults" and method == "GET":
                answer = json_response(200, STATE.configuration(), close)
            elif path == "stats" and method == "GET":
                answer = json_response(200, STATE.stats(), close)
            else:
                answer = json_response(404, {"error": f"no control endpoint {method} {target}"}, close)
        except (ValueError, TypeError) as error:
            answer = json_response(400, {"error": str(error)}, close)
        client.sendall(answer)
        return not close


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def exit_with_parent() -> None:
    """Ends the process once its parent (the test process) is gone, even if it crashed."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main() -> None:
    global verbose
    parser = argparse.ArgumentParser(description="Fault-injecting HTTP/1.1 proxy for tests.")
    parser.add_argument("--upstream-host", default="127.0.0.1")
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free one)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log requests to stderr")
    arguments = parser.parse_args()
    verbose = arguments.verbose
    Handler.upstream = (arguments.upstream_host, arguments.upstream_port)
    exit_with_parent()
    with Server(("127.0.0.1", arguments.port), Handler) as server:
        print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
