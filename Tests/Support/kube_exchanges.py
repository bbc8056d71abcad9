#!/usr/bin/env python3
"""A Kubernetes API server stand-in that replays written exchanges, over HTTPS (Python 3.11, standard library
and the openssl command line tool).

No Kubernetes runs where these tests run. The exchanges it replays (Tests/Support/kubernetes/*.json) are
written by hand from the Kubernetes API reference (apps/v1 Deployment, core/v1 Pod list, meta/v1 Status, JSON
merge patch): they are not recordings of a live cluster. What they prove is that the client sends exactly the
requests the reference describes, in the expected order, and acts correctly on the answers the reference
describes; not that a given cluster answers so.

Started by Tests/TestSupport/KubeExchangeServer.swift:

    kube_exchanges.py --dir DIR EXCHANGES.json

It makes a throwaway CA and a server certificate for 127.0.0.1 in DIR with `openssl` (DIR/ca.crt is the
cluster's CA to trust; DIR/other-ca.crt is an unrelated CA, for the test that the client refuses a server its
CA did not sign), then listens on 127.0.0.1 on a port it picks and prints one line "listening on
127.0.0.1:PORT" to standard output.

The exchange file:

    {"description": "...", "token": "the bearer token every request must carry (unless an exchange says)",
     "exchanges": [
        {"description": "...",
         "request": {"method": "PATCH", "path": "/apis/apps/v1/namespaces/ns/deployments/web",
                     "query": {"labelSelector": "app=web"},       (optional: the exact query, decoded)
                     "contentType": "application/merge-patch+json", (required when there is a body)
                     "body": {...},                                 (the exact JSON body)
                     "token": "..."},                               (optional: another bearer token)
         "response": {"status": 200, "body": {...}},
         "repeat": true},                                   (optional: see below)
        ...]}

Each request must be the next exchange's, exactly: method, path, query, `Authorization: Bearer <token>`,
Content-Type, and a body equal to the expected JSON (types included: 1 is not 1.0 nor true; a number written
with a fraction or an exponent is refused outright, as Kubernetes refuses 8080.0 for an int32 field). A request
that does not match is recorded as a failure and answered 500 with a Status naming the difference; the exchange
stays next. A request after the last exchange is a failure too. An exchange marked "repeat" answers every
request that matches it, for as long as they come (a poll that never ends, for a test of a time limit); it
counts as served once it answered one, and the first request that does not match it goes on to the next
exchange.

Control API (no token, never counted as an exchange):

    GET /__replay__/report   {"failures": ["..."], "unconsumed": ["METHOD path: description", ...], "served": n,
                             "answered": requests answered, a repeating exchange's repeats included}
"""

import argparse
import json
import os
import ssl
import subprocess
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OPENSSL_CONFIG = """
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:kubernetes.default.svc
authorityKeyIdentifier = keyid
"""


def openssl(*arguments):
    subprocess.run(["openssl", *arguments], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_certificates(directory):
    config = os.path.join(directory, "openssl.cnf")
    with open(config, "w") as file:
        file.write(OPENSSL_CONFIG)
    path = lambda name: os.path.join(directory, name)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for name, subject in (("ca", "/CN=contingency test cluster CA"), ("other-ca", "/CN=some other CA")):
        openssl("req", "-x509", "-config", config, "-extensions", "ca", *ec, "-keyout", path(name + ".key"),
                "-out", path(name + ".crt"), "-days", "2", "-subj", subject)
    openssl("req", "-new", "-config", config, *ec, "-keyout", path("server.key"), "-out", path("server.csr"),
            "-subj", "/CN=kube-apiserver")
    openssl("x509", "-req", "-in", path("server.csr"), "-CA", path("ca.crt"), "-CAkey", path("ca.key"),
            "-CAcreateserial", "-out", path("server.crt"), "-days", "2", "-extfile", config, "-extensions", "server")
    return path("server.crt"), path("server.key")


class FloatRefused(ValueError):
    pass


def refuse_float(text):
    raise FloatRefused(text)


def same(expected, got):
    """Equality that tells 1 from 1.0 and from true."""
    if type(expected) is not type(got):
        return False
    if isinstance(expected, dict):
        return expected.keys() == got.keys() and all(same(expected[key], got[key]) for key in expected)
    if isinstance(expected, list):
        return len(expected) == len(got) and all(same(a, b) for a, b in zip(expected, got))
    return expected == got


def first_difference(expected, got, where="$"):
    if type(expected) is not type(got):
        return f"{where}: expected {json.dumps(expected)[:200]}, got {json.dumps(got)[:200]}"
    if isinstance(expected, dict):
        for key in sorted(set(expected) | set(got)):
            if key not in got:
                return f"{where}.{key}: missing (expected {json.dumps(expected[key])[:200]})"
            if key not in expected:
                return f"{where}.{key}: not expected (got {json.dumps(got[key])[:200]})"
            difference = first_difference(expected[key], got[key], f"{where}.{key}")
            if difference:
                return difference
        return None
    if isinstance(expected, list):
        if len(expected) != len(got):
            return f"{where}: expected {len(expected)} items, got {len(got)}: {json.dumps(got)[:300]}"
        for index, (a, b) in enumerate(zip(expected, got)):
            difference = first_difference(a, b, f"{where}[{index}]")
            if difference:
                return difference
        return None
    return None if expected == got else f"{where}: expected {json.dumps(expected)}, got {json.dumps(got)}"


class Replay:
    def __init__(self, document):
        self.token = document.get("token")
        self.exchanges = document["exchanges"]
        self.next = 0
        self.repeating = None
        self.failures = []
        self.answered = 0
        self.lock = threading.Lock()

    def answer(self, method, target, headers, body):
        """The response to this request, or (None, why it is not the expected one). A repeating exchange that
        answered once gives way to the next one when the request is not its own."""
        if self.repeating is not None:
            if self.mismatch(self.repeating, method, target, headers, body) is None:
                self.answered += 1
                return self.exchanges[self.repeating]["response"], None
            self.repeating = None
        if self.next >= len(self.exchanges):
            return None, f"unexpected request {method} {target}: every exchange was already served"
        failure = self.mismatch(self.next, method, target, headers, body)
        if failure:
            return None, failure
        exchange = self.exchanges[self.next]
        if exchange.get("repeat"):
            self.repeating = self.next
        self.next += 1
        self.answered += 1
        return exchange["response"], None

    def mismatch(self, index, method, target, headers, body):
        """Why this request is not exchange `index`'s, or None."""
        exchange = self.exchanges[index]
        expected = exchange["request"]
        step = f"exchange {index + 1} ({expected['method']} {expected['path']}: {exchange.get('description', '')})"
        parsed = urllib.parse.urlsplit(target)
        if method != expected["method"] or parsed.path != expected["path"]:
            return f"{step}: got {method} {parsed.path}"
        query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True, strict_parsing=False)
        query = {key: values[0] if len(values) == 1 else values for key, values in query.items()}
        if query != expected.get("query", {}):
            return f"{step}: query {json.dumps(query)}, expected {json.dumps(expected.get('query', {}))}"
        token = expected.get("token", self.token)
        authorization = headers.get("Authorization")
        if authorization is None:
            return f"{step}: no Authorization header"
        if not authorization.startswith("Bearer "):
            return f"{step}: the Authorization header is not a bearer token"
        if authorization != f"Bearer {token}":
            return f"{step}: wrong bearer token (not the token file's current content)"
        content_type = headers.get("Content-Type")
        if expected.get("contentType") != content_type:
            return f"{step}: Content-Type {content_type!r}, expected {expected.get('contentType')!r}"
        if "body" not in expected:
            return f"{step}: unexpected body of {len(body)} bytes" if body else None
        try:
            got = json.loads(body.decode("utf-8"), parse_float=refuse_float)
        except FloatRefused as error:
            return f"{step}: the body writes the number {error} with a fraction or exponent (Kubernetes refuses that for an integer field)"
        except ValueError as error:
            return f"{step}: the body is not JSON ({error}): {body[:200]!r}"
        if not same(expected["body"], got):
            return f"{step}: body differs at {first_difference(expected['body'], got)}; got {json.dumps(got, sort_keys=True)[:1500]}"
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    replay = None

    def log_message(self, format, *arguments):
        sys.stderr.write("kube_exchanges: " + (format % arguments) + "\n")

    def send_json(self, status, document):
        data = json.dumps(document).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        replay = Handler.replay
        if self.path == "/__replay__/report":
            with replay.lock:
                unconsumed = [f"{e['request']['method']} {e['request']['path']}: {e.get('description', '')}"
                              for e in replay.exchanges[replay.next:]]
                self.send_json(200, {"failures": replay.failures, "unconsumed": unconsumed, "served": replay.next,
                                     "answered": replay.answered})
            return
        with replay.lock:
            response, failure = replay.answer(self.command, self.path, self.headers, body)
            if failure:
                replay.failures.append(failure)
                sys.stderr.write(f"kube_exchanges: FAILURE {failure}\n")
                self.send_json(500, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                     "message": f"exchange replay: {failure}", "reason": "InternalError", "code": 500})
                return
        self.send_json(response["status"], response["body"])

    do_GET = do_PATCH = do_PUT = do_POST = do_DELETE = handle_any


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("exchanges")
    arguments = parser.parse_args()
    with open(arguments.exchanges) as file:
        Handler.replay = Replay(json.load(file))
    certificate, key = make_certificates(arguments.dir)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
