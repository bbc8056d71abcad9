#!/usr/bin/env python3
"""Drives the sidecar's status page in headless Chromium, as an operator would, and reports what the page showed.

Chromium is spoken to with the Chrome DevTools Protocol over --remote-debugging-pipe (file descriptors 3 and 4,
messages separated by NUL bytes): no port, no WebSocket library, nothing but the standard library and Debian's
`chromium`. The steps, each observed from the DOM:

  signedOut   the page as opened: no token given
  wrongToken  a wrong token typed into the form and submitted
  rightToken  the right token typed and submitted (then a full-page PNG screenshot)
  reloaded    the page reloaded: the token is kept in the tab's sessionStorage
  forgotten   "Forget token" clicked

With --sequence, the page is opened and each token of STATUS_PAGE_TOKENS (one a line) is typed in turn instead,
the page observed after each answer (`steps`): for the answers that are no data (503, 429).

Tokens come from the environment (STATUS_PAGE_TOKEN, STATUS_PAGE_WRONG_TOKEN), never from the command line. The
report is one JSON document on standard output; the caller asserts on it. Chromium runs in a fresh profile in a
temporary folder, is stopped when this script ends however it ends (and, through PR_SET_PDEATHSIG, when this
script is killed), and the folder is removed.

Exit status: 0 with a report, 2 when chromium cannot be found or started, 1 on any other failure (the reason on
standard error).
"""

import argparse
import base64
import ctypes
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TOKEN_KEY = "contingency.apiToken"

# Recorded in every document before the page's own script runs: the page must never break its own policy.
VIOLATION_RECORDER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.__cspViolations.push(event.violatedDirective + ' ' + (event.blockedURI || ''));
});
"""

OBSERVE = """
(() => {
  const byId = (id) => document.getElementById(id);
  const message = byId('message');
  const charts = {};
  for (const svg of document.querySelectorAll('svg[data-chart]')) {
    charts[svg.dataset.chart] = {
      points: svg.querySelectorAll('circle.point').length,
      bars: svg.querySelectorAll('rect.bar').length,
      probes: svg.querySelectorAll('rect.probe').length,
      pointTitles: [...svg.querySelectorAll('circle.point title')].map((title) => title.textContent),
    };
  }
  return {
    state: document.body.dataset.state,
    html: document.documentElement.outerHTML,
    text: document.body.innerText,
    message: message && !message.hidden ? message.textContent : '',
    tokenStored: sessionStorage.getItem('%s') !== null,
    contentShown: !byId('content').hidden,
    backups: [...document.querySelectorAll('#backup-rows tr.backup')].map((row) => ({
      name: row.querySelector('.filename').textContent,
      size: row.querySelector('td.size').textContent,
      duration: row.querySelector('td.duration').textContent,
      verified: row.querySelector('td.verified').textContent,
      encrypted: row.querySelector('td.encrypted').textContent,
      signature: row.querySelector('td.signature').textContent,
    })),
    charts,
    health: byId('health').textContent,
    steps: [...document.querySelectorAll('#rollback tr.step')].map((row) => row.cells[0].textContent),
    rollback: byId('rollback').textContent,
    violations: window.__cspViolations || [],
  };
})()
""" % TOKEN_KEY


class Failure(Exception):
    pass


class Chromium:
    """One headless Chromium and its DevTools pipe."""

    def __init__(self, executable, profile, width, height):
        commands_read, self.commands = os.pipe()
        self.answers, answers_write = os.pipe()
        arguments = [
            executable, "--headless=new", "--remote-debugging-pipe", f"--user-data-dir={profile}",
            "--no-first-run", "--no-default-browser-check", "--disable-gpu", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-default-apps", "--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars",
            "--metrics-recording-only", "--password-store=basic", "--use-mock-keychain",
            # Fewer processes and threads: the suite runs beside many servers, in containers whose pids are counted.
            "--in-process-gpu", "--renderer-process-limit=1", "--enable-features=NetworkServiceInProcess",
            f"--window-size={width},{height}", "--force-device-scale-factor=1", "about:blank",
        ]
        if os.geteuid() == 0:
            # Chromium's sandbox refuses to run as root; the pages it opens here are the test's own.
            arguments.insert(1, "--no-sandbox")

        def child_setup():
            # Through descriptors above 4 first: a pipe end may itself be 3 or 4.
            reading = fcntl.fcntl(commands_read, fcntl.F_DUPFD, 10)
            writing = fcntl.fcntl(answers_write, fcntl.F_DUPFD, 10)
            os.dup2(reading, 3)
            os.dup2(writing, 4)
            # Dies with this script, even when this script is killed with SIGKILL.
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            arguments, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, close_fds=False,
            preexec_fn=child_setup)
        os.close(commands_read)
        os.close(answers_write)
        self.buffer = b""
        self.next_id = 0
        self.events = []

    def send(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            written = os.write(self.commands, data)
            data = data[written:]
        deadline = time.monotonic() + timeout
        answer = None
        while answer is None:
            # Every message of a read is kept: events that came with the answer are not lost.
            for message in self._read(deadline):
                if message.get("id") == self.next_id:
                    answer = message
                elif "method" in message:
                    self.events.append(message)
        if "error" in answer:
            raise Failure(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def wait_event(self, method, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            for index, event in enumerate(self.events):
                if event["method"] == method:
                    return self.events.pop(index)
            for message in self._read(deadline):
                if "method" in message:
                    self.events.append(message)

    def drain(self):
        """Events that arrived while nothing was waiting for them."""
        try:
            for message in self._read(time.monotonic() + 0.05):
                if "method" in message:
                    self.events.append(message)
        except Failure:
            pass

    def _read(self, deadline):
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("chromium did not answer in time")
            ready, _, _ = select.select([self.answers], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.answers, 1 << 20)
            if not chunk:
                raise Failure("chromium closed its DevTools pipe (it exited): " + self.output())
            self.buffer += chunk
        messages = []
        while b"\0" in self.buffer:
            raw, self.buffer = self.buffer.split(b"\0", 1)
            messages.append(json.loads(raw))
        return messages

    def output(self):
        self.log.seek(0)
        return self.log.read()[-4000:].decode(errors="replace")

    def close(self):
        if self.process.poll() is None:
            try:
                self.send("Browser.close", timeout=5)
            except (Failure, OSError):
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for descriptor in (self.commands, self.answers):
            try:
                os.close(descriptor)
            except OSError:
                pass


class Page:
    """One tab, attached with a flat session."""

    def __init__(self, browser, width, height):
        self.browser = browser
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        self.call("Page.addScriptToEvaluateOnNewDocument", {"source": VIOLATION_RECORDER})

    def call(self, method, params=None, timeout=30):
        return self.browser.send(method, params, session=self.session, timeout=timeout)

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise Failure(f"evaluating {expression[:80]!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression, what, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            self.browser.drain()
            time.sleep(0.1)
        raise Failure(f"timed out after {timeout}s waiting for {what}; the page: " + str(self.evaluate(
            "document.body ? document.body.dataset.state + ' ' + document.body.innerText.slice(0, 2000) : ''")))

    def wait_state(self, states, what):
        wanted = json.dumps(states)
        return self.wait_for(f"{wanted}.includes(document.body && document.body.dataset.state)", what)

    def type_token(self, token):
        # The state the last answer left must not pass for this one's: the page sets its own once it answers.
        self.evaluate("document.body.dataset.state = 'typing'")
        self.evaluate("document.getElementById('token').focus()")
        self.call("Input.insertText", {"text": token})
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", {
                "type": kind, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13,
                "nativeVirtualKeyCode": 13, **({"text": "\r"} if kind == "keyDown" else {})})

    def screenshot(self, path):
        metrics = self.call("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "wb") as file:
            file.write(base64.b64decode(data["data"]))


def find_chromium(given):
    for candidate in [given, "chromium", "chromium-browser", "google-chrome"]:
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the status page, e.g. http://127.0.0.1:8080/")
    parser.add_argument("--screenshot", required=True, help="where the PNG of the page with the token goes")
    parser.add_argument("--wrong-screenshot", help="where a PNG of the page after the wrong token goes (optional)")
    parser.add_argument("--profile-parent", help="where the browser's temporary profile folder goes")
    parser.add_argument("--chromium", help="the browser's executable (default: chromium on PATH)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--sequence", action="store_true", help="type each token of STATUS_PAGE_TOKENS in turn")
    arguments = parser.parse_args()
    token = os.environ.get("STATUS_PAGE_TOKEN")
    wrong = os.environ.get("STATUS_PAGE_WRONG_TOKEN")
    sequence = [line for line in os.environ.get("STATUS_PAGE_TOKENS", "").splitlines() if line]
    if arguments.sequence and not sequence:
        print("--sequence: STATUS_PAGE_TOKENS must hold at least one token", file=sys.stderr)
        return 1
    if not arguments.sequence and (not token or not wrong):
        print("STATUS_PAGE_TOKEN and STATUS_PAGE_WRONG_TOKEN must be set", file=sys.stderr)
        return 1
    executable = find_chromium(arguments.chromium)
    if executable is None:
        print("chromium is not installed: apt-get install -y chromium (scripts/install-deps.sh installs it)",
              file=sys.stderr)
        return 2
    # In the caller's folder when given, so that a caller that had to kill this script still removes it.
    profile = tempfile.mkdtemp(prefix="status-page-chromium-", dir=arguments.profile_parent)
    browser = None
    try:
        try:
            browser = Chromium(executable, profile, arguments.width, arguments.height)
            browser.send("Browser.getVersion", timeout=60)
        except (Failure, OSError) as error:
            output = browser.output() if browser else ""
            print(f"chromium ({executable}) could not be started: {error}\n{output}", file=sys.stderr)
            return 2
        page = Page(browser, arguments.width, arguments.height)
        report = {}
        page.call("Page.navigate", {"url": arguments.url})
        page.wait_state(["signed-out", "loaded", "unauthorized", "disabled", "error"], "the page to start")
        report["signedOut"] = page.evaluate(OBSERVE)

        if arguments.sequence:
            report["steps"] = []
            for typed in sequence:
                page.type_token(typed)
                page.wait_state(["loaded", "unauthorized", "disabled", "throttled", "error"], "the answer")
                report["steps"].append(page.evaluate(OBSERVE))
            page.screenshot(arguments.screenshot)
            report["screenshot"] = os.path.abspath(arguments.screenshot)
            json.dump(report, sys.stdout)
            return 0

        page.type_token(wrong)
        page.wait_state(["unauthorized", "disabled", "throttled", "error"], "the wrong token's answer")
        report["wrongToken"] = page.evaluate(OBSERVE)
        if arguments.wrong_screenshot:
            page.screenshot(arguments.wrong_screenshot)

        page.type_token(token)
        page.wait_state(["loaded", "unauthorized", "disabled", "throttled", "error"], "the right token's answer")
        report["rightToken"] = page.evaluate(OBSERVE)
        page.screenshot(arguments.screenshot)
        report["screenshot"] = os.path.abspath(arguments.screenshot)

        page.call("Page.reload")
        page.wait_for("document.body && document.body.dataset.state === 'loaded' && "
                      "document.querySelectorAll('#backup-rows tr').length > 0", "the reloaded page's data")
        report["reloaded"] = page.evaluate(OBSERVE)

        page.evaluate("document.getElementById('forget').click()")
        page.wait_state(["signed-out"], "the token to be forgotten")
        report["forgotten"] = page.evaluate(OBSERVE)

        browser.drain()
        report["requests"] = [
            {"url": event["params"]["request"]["url"],
             "token": any(name.lower() == "x-api-token" for name in event["params"]["request"].get("headers", {}))}
            for event in browser.events if event["method"] == "Network.requestWillBeSent"]
        report["exceptions"] = [
            event["params"]["exceptionDetails"].get("text", "") + " " +
            json.dumps(event["params"]["exceptionDetails"].get("exception", {}).get("description", ""))
            for event in browser.events if event["method"] == "Runtime.exceptionThrown"]
        report["log"] = [
            {"source": event["params"]["entry"].get("source"), "level": event["params"]["entry"].get("level"),
             "text": event["params"]["entry"].get("text")}
            for event in browser.events if event["method"] == "Log.entryAdded"]
        report["console"] = [
            {"type": event["params"].get("type"),
             "text": " ".join(str(argument.get("value", argument.get("description", "")))
                              for argument in event["params"].get("args", []))}
            for event in browser.events if event["method"] == "Runtime.consoleAPICalled"]
        json.dump(report, sys.stdout)
        return 0
    except Failure as error:
        print(f"status page check failed: {error}\nchromium's output:\n{browser.output() if browser else ''}",
              file=sys.stderr)
        return 1
    finally:
        if browser:
            browser.close()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
