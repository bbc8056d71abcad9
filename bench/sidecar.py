#!/usr/bin/env python3
"""The sidecar's responsiveness while it works (bench/sidecar.sh runs this; not part of the test suite).

Starts sidecar-load (the sidecar's real application and probe loop, plus a backup in the same process on a cue),
sends GET /healthz at a steady RATE (each request on a new connection, as a kubelet's probe does, each in its own
thread so that one slow answer never delays the next request), first while the sidecar is idle, then while it
runs backups of the benchmark's data, and reports the latencies (p50/p95/p99/max) of both and their differences,
with the process's resident memory (/proc/<pid>/status) idle and at its peak. Writes the report (Markdown) and
the raw measurements (JSON).
"""
import argparse
import json
import os
import platform
import queue
import socket
import subprocess
import sys
import threading
import time

GOAL_P99_MS = 50.0
GOAL_RSS_MB = 30.0


def get_healthz(port, timeout=5.0):
    """One request on a new connection: (seconds, status or None)."""
    started = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            received = b""
            while True:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                received += chunk
        status = int(received.split(b" ", 2)[1]) if received.startswith(b"HTTP/") else None
    except (OSError, ValueError, IndexError):
        status = None
    return time.perf_counter() - started, status


class Load:
    """GET /healthz every 1/rate seconds on a fixed schedule until stopped; collects (latency, status)."""

    def __init__(self, port, rate):
        self.port, self.rate = port, rate
        self.samples, self.lock = [], threading.Lock()
        self.stopping = threading.Event()
        self.threads = []

    def one(self):
        latency, status = get_healthz(self.port)
        with self.lock:
            self.samples.append((latency, status))

    def run(self, seconds=None):
        """Runs until `seconds` passed or `stop()`; waits for the requests in flight."""
        start = time.perf_counter()
        period = 1.0 / self.rate
        sent = 0
        while not self.stopping.is_set():
            due = start + sent * period
            if seconds is not None and due - start >= seconds:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                self.stopping.wait(delay)
                if self.stopping.is_set():
                    break
            thread = threading.Thread(target=self.one, daemon=True)
            thread.start()
            self.threads.append(thread)
            sent += 1
        for thread in self.threads:
            thread.join()
        return self.samples

    def stop(self):
        self.stopping.set()


def percentile(sorted_values, fraction):
    """Nearest rank."""
    if not sorted_values:
        return float("nan")
    rank = max(1, int(-(-fraction * len(sorted_values) // 1)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize(samples):
    latencies = sorted(latency * 1000 for latency, status in samples if status is not None)
    return {
        "requests": len(samples),
        "errors": sum(1 for _, status in samples if status is None),
        "non200": sum(1 for _, status in samples if status not in (None, 200)),
        "p50": percentile(latencies, 0.50), "p95": percentile(latencies, 0.95),
        "p99": percentile(latencies, 0.99), "max": latencies[-1] if latencies else float("nan"),
    }


def memory(pid):
    """VmRSS, VmHWM, RssAnon (heap, stacks) and RssFile (mapped files: code and data of the executable and its
    libraries) in MB."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                values[key] = int(rest.split()[0]) / 1024
    return values


def idle_memory(binary, port, rate, seconds, settle, log_path):
    """`<binary> --loop` alone: its memory after settling, then after `seconds` of /healthz at `rate`."""
    environment = dict(os.environ, SIDECAR_PORT=str(port), SIDECAR_ID="bench-idle",
                       HEALTH_CHECK_URL=f"http://127.0.0.1:{port}/healthz")
    with open(log_path, "w") as log:
        process = subprocess.Popen([binary, "--loop"], stdout=log, stderr=log, env=environment)
        try:
            deadline = time.time() + 60
            while get_healthz(port, timeout=1)[1] != 200:
                if time.time() > deadline or process.poll() is not None:
                    raise SystemExit(f"{binary} --loop never answered 200; log: {log_path}")
                time.sleep(0.2)
            time.sleep(settle)
            settled = memory(process.pid)
            Load(port, rate).run(seconds)
            loaded = memory(process.pid)
            threads = thread_count(process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return {"settled": settled, "loaded": loaded, "threads": threads}


def thread_count(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def niced_threads(pid):
    """The process's threads running at a nice value above 0: {name: nice}."""
    found = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/stat") as stat:
                text = stat.read()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        nice = int(text[text.rindex(")") + 2:].split()[16])
        if nice > 0:
            found[f"{name}#{task}"] = nice
    return found


class NiceWatch:
    """Samples which threads run below normal priority while a backup runs."""

    def __init__(self, pid):
        self.pid, self.seen, self.stopping = pid, {}, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping.wait(0.2):
            try:
                self.seen.update(niced_threads(self.pid))
            except OSError:
                return

    def stop(self):
        self.stopping.set()
        self.thread.join()
        return self.seen


class Sidecar:
    """sidecar-load as a child: its answers (`SIDECAR-LOAD …` lines) in a queue, its log in a file."""

    def __init__(self, binary, log_path):
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(
            [binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1)
        self.answers = queue.Queue()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.process.stdout:
            if line.startswith("SIDECAR-LOAD "):
                self.answers.put(line[len("SIDECAR-LOAD "):].strip())
            else:
                self.log.write(line)
        self.answers.put("exited")

    def answer(self, timeout):
        line = self.answers.get(timeout=timeout)
        if line == "exited":
            raise SystemExit(f"sidecar-load exited ({self.process.wait()}); its log: {self.log.name}")
        return line

    def cue(self, line):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def stop(self):
        try:
            self.process.stdin.close()  # end of input: graceful shutdown
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
        finally:
            self.log.close()


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            model = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    with open("/proc/meminfo") as info:
        total = int(next(line for line in info if line.startswith("MemTotal")).split()[1]) // (1024 * 1024)
    return f"{os.cpu_count()} cores ({model}), {total} GiB, {platform.system()} {platform.release()}"


def measure(arguments):
    alone = {}
    for label, binary in arguments.alone:
        print(f"  {label}: health-sidecar --loop alone, idle", flush=True)
        alone[label] = idle_memory(binary, arguments.alone_port, arguments.rate, 10, arguments.settle,
                                   f"{arguments.log}.{len(alone)}")
    sidecar = Sidecar(arguments.bin, arguments.log)
    try:
        pid = int(sidecar.answer(60).split()[1])
        deadline = time.time() + 60
        while get_healthz(arguments.port, timeout=1)[1] != 200:
            if time.time() > deadline:
                raise SystemExit(f"/healthz never answered 200; log: {arguments.log}")
            time.sleep(0.2)
        time.sleep(arguments.settle)
        result = {"pid": pid, "rate": arguments.rate, "settled": memory(pid), "threads_idle": thread_count(pid),
                  "alone": alone}
        print(f"  idle: {arguments.idle:.0f} s of /healthz at {arguments.rate}/s", flush=True)
        result["idle"] = summarize(Load(arguments.port, arguments.rate).run(arguments.idle))
        result["after_idle"] = memory(pid)
        rounds = []
        for index in range(arguments.rounds):
            for compression in arguments.compressions.split(","):
                load = Load(arguments.port, arguments.rate)
                sidecar.cue(f"backup {compression}")
                if sidecar.answer(30) != "started":
                    raise SystemExit("sidecar-load did not start the backup")
                runner = threading.Thread(target=load.run)
                runner.start()
                watch = NiceWatch(pid)
                outcome = sidecar.answer(3600)
                load.stop()
                runner.join()
                niced = watch.stop()
                if not outcome.startswith("finished"):
                    raise SystemExit(f"the backup failed: {outcome}; log: {arguments.log}")
                _, seconds, size = outcome.split()
                rounds.append({"compression": compression, "seconds": float(seconds), "archive_bytes": int(size),
                               "samples": load.samples,
                               "niced_threads": len(niced),
                               "niced_names": sorted({name.split("#")[0] for name in niced})})
                print(f"  backup {index + 1} ({compression}): {float(seconds):.1f} s, "
                      f"{len(load.samples)} requests meanwhile", flush=True)
                time.sleep(2)
        result["peak"] = memory(pid)
        result["threads_after"] = thread_count(pid)
        result["backups"] = [{k: v for k, v in r.items() if k != "samples"} | {"load": summarize(r["samples"])}
                             for r in rounds]
        result["busy"] = summarize([sample for r in rounds for sample in r["samples"]])
        for compression in arguments.compressions.split(","):
            result[f"busy_{compression}"] = summarize(
                [sample for r in rounds if r["compression"] == compression for sample in r["samples"]])
        result["exit"] = sidecar.stop()
        return result
    except BaseException:
        sidecar.process.kill()
        raise


def table(result, compressions):
    idle = result["idle"]
    rows = [("idle", idle)] + [(f"during backups ({c})", result[f"busy_{c}"]) for c in compressions] + \
        ([("during backups (all)", result["busy"])] if len(compressions) > 1 else [])
    lines = ["| /healthz | requests | errors | p50 ms | p95 ms | p99 ms | max ms | p99 − idle p99 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, s in rows:
        difference = "" if s is idle else f"{s['p99'] - idle['p99']:+.1f} ms"
        lines.append(f"| {label} | {s['requests']} | {s['errors'] + s['non200']} | {s['p50']:.1f} | {s['p95']:.1f} | "
                     f"{s['p99']:.1f} | {s['max']:.1f} | {difference} |")
    settled, peak = result["settled"], result["peak"]

    def split(values):
        if "RssAnon" not in values:
            return " | |"
        return f" | {values['RssAnon']:.1f} | {values['RssFile']:.1f} |"
    lines += ["", "| memory | VmRSS MB | of it RssAnon (heap, stacks) | RssFile (code, libraries) |", "|---|---:|---:|---:|"]
    for label, alone in result.get("alone", {}).items():
        lines += [f"| `health-sidecar --loop` ({label}), idle, settled | {alone['settled']['VmRSS']:.1f}"
                  + split(alone["settled"]),
                  f"| `health-sidecar --loop` ({label}), after 10 s of requests | {alone['loaded']['VmRSS']:.1f}"
                  + split(alone["loaded"])]
    lines += [f"| sidecar-load, idle, settled | {settled['VmRSS']:.1f}" + split(settled),
              f"| sidecar-load, after the idle requests | {result['after_idle']['VmRSS']:.1f}"
              + split(result["after_idle"]),
              f"| sidecar-load, peak (VmHWM) over the backups | {peak['VmHWM']:.1f} | | |",
              f"| sidecar-load, after the backups | {peak['VmRSS']:.1f}" + split(peak),
              "", f"Threads: {result['threads_idle']} idle, {result['threads_after']} after the backups.", "",
              "| backup | seconds | archive MB | requests | p99 ms | max ms | threads below normal priority |",
              "|---|---:|---:|---:|---:|---:|---|"]
    for index, b in enumerate(result["backups"]):
        niced = b.get("niced_threads", 0)
        names = ", ".join(b.get("niced_names", []))
        lines.append(f"| {index + 1} ({b['compression']}) | {b['seconds']:.1f} | {b['archive_bytes'] / 1e6:.0f} | "
                     f"{b['load']['requests']} | {b['load']['p99']:.1f} | {b['load']['max']:.1f} | "
                     f"{niced}{f' ({names})' if names else ''} |")
    return lines


def verdict(result):
    difference = result["busy"]["p99"] - result["idle"]["p99"]
    # The goal is health-sidecar --loop's, as the image builds it when measured (the first of --alone).
    alone = list(result.get("alone", {}).values())
    rss = alone[0]["settled"]["VmRSS"] if alone else result["settled"]["VmRSS"]
    errors = result["busy"]["errors"] + result["busy"]["non200"] + result["idle"]["errors"] + result["idle"]["non200"]
    latency_met = difference < GOAL_P99_MS and errors == 0
    met = latency_met and rss < GOAL_RSS_MB
    return met, (f"latency goal **{'met' if latency_met else 'NOT met'}**, memory goal "
                 f"**{'met' if rss < GOAL_RSS_MB else 'NOT met'}**: "
                 f"p99 during backups − idle p99 = {difference:+.1f} ms (goal < {GOAL_P99_MS:.0f} ms), "
                 f"idle RSS {rss:.1f} MB{' (health-sidecar --loop, ' + list(result['alone'])[0] + ')' if alone else ''} "
                 f"(goal < {GOAL_RSS_MB:.0f} MB), {errors} failed requests")


def report(arguments, result, before):
    compressions = arguments.compressions.split(",")
    met, line = verdict(result)
    lines = [
        "# The sidecar's responsiveness while it backs up",
        "",
        "Written by `bench/sidecar.sh` (not part of the test suite). `sidecar-load` (bench/SidecarLoad) runs the "
        "sidecar's real application (`buildApplication`: HTTP server, probe loop, heartbeat) and, on a cue, "
        "`BackupJob` in the same process, as the admin API's `POST /api/backups` will. A client sends "
        f"`GET /healthz` {arguments.rate} times a second (a new connection each, never waiting for the previous "
        "answer), first idle, then while the backups run. Memory from `/proc/<pid>/status`.",
        "",
        f"- Machine: {machine()}",
        f"- Data: {arguments.dataset}",
        f"- Parameters: {arguments.parameters}",
        f"- Commit: {arguments.commit}",
        "",
        f"Result: {line}.",
        "",
    ] + table(result, compressions)
    if before:
        _, before_line = verdict(before["result"])
        lines += ["", f"## Before the fixes ({before['commit']})", "",
                  "The same benchmark on the code before the sidecar's fixes (the backup's archive written on the "
                  "cooperative pool, compression at the server's priority, the default event loop group).", "",
                  f"Result: {before_line}.", ""] + table(before["result"], compressions)
    if arguments.notes and os.path.exists(arguments.notes):
        with open(arguments.notes) as notes:
            lines += ["", notes.read().rstrip()]
    return "\n".join(lines) + "\n", met


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--idle", type=float, default=30)
    parser.add_argument("--settle", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--compressions", default="gzip,zstd")
    parser.add_argument("--dataset", default="")
    parser.add_argument("--parameters", default="")
    parser.add_argument("--commit", default="")
    parser.add_argument("--raw", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--before", help="raw JSON of an earlier run, reported as 'before'")
    parser.add_argument("--alone", nargs=2, action="append", default=[], metavar=("LABEL", "BINARY"),
                        help="a health-sidecar build whose idle memory is measured alone (the first sets the goal)")
    parser.add_argument("--alone-port", type=int, default=0)
    parser.add_argument("--notes", help="Markdown appended to the report")
    arguments = parser.parse_args()
    result = measure(arguments)
    with open(arguments.raw, "w") as raw:
        json.dump({"commit": arguments.commit, "parameters": arguments.parameters, "dataset": arguments.dataset,
                   "result": result}, raw, indent=1)
    before = None
    if arguments.before and os.path.exists(arguments.before):
        with open(arguments.before) as file:
            before = json.load(file)
    text, met = report(arguments, result, before)
    with open(arguments.out, "w") as out:
        out.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
