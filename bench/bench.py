#!/usr/bin/env python3
"""Runs the benchmark's cases, alternating, and writes the report. Called by bench/run.sh, which builds the
release binaries, starts PostgreSQL and makes the data; the environment carries PG* for the server.

Every case runs under GNU time (`/usr/bin/time -v`): wall time is measured here, peak RSS is time's
"Maximum resident set size", the largest of the process and its children (pg_dump, tar, gzip…; the
PostgreSQL server is not a child and is not counted). Ratios are against the shell procedure's median in
this same invocation.
"""
import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(command, env=None, check=True):
    return subprocess.run(["bash", "-c", command], env=env, check=check, capture_output=True, text=True)


def folder_bytes(path):
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            full = os.path.join(folder, name)
            if not os.path.islink(full):
                total += os.path.getsize(full)
    return total


def parse_duration(text):
    """DurationFormat's strings: "850 ms", "12.3 s", "2m 05s"."""
    if m := re.fullmatch(r"(\d+) ms", text):
        return int(m[1]) / 1000
    if m := re.fullmatch(r"([\d.]+) s", text):
        return float(m[1])
    if m := re.fullmatch(r"(\d+)m (\d+)s", text):
        return int(m[1]) * 60 + int(m[2])
    return None


def machine():
    """The machine, as the reports name it: cores, processor, memory, kernel."""
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    memory = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")) * 1024
    return f"{os.cpu_count()} cores ({cpu}), {memory / 2**30:.0f} GiB RAM, {platform.system()} {platform.release()}"


def versions(pg_bin, env):
    """The versions of what the cases run besides the project's own binaries."""
    found = {}
    for name, command in [
        ("PostgreSQL", f"{pg_bin}/postgres --version"), ("restic", "restic version"),
        ("GNU tar", "tar --version | head -1"), ("gzip", "gzip --version | head -1"),
        ("zstd", "zstd --version"), ("pigz", "pigz --version 2>&1"),
        ("libarchive", "dpkg-query -W -f='${Version}' libarchive13"),
        ("libdeflate", "dpkg-query -W -f='${Version}' libdeflate0"),
    ]:
        found[name] = sh(command, env=env, check=False).stdout.strip()
    return found


# What the jobs' own log lines say about where their time went.
PHASES = [
    ("dump", r"Database dumped: .* in (.+)$"),
    ("archive", r"Archive written from .* in (.+)$"),
    ("verify", r"Verified in (.+)$"),
    ("pg_restore", r"Restored the dump into \S+ in (.+)$"),
]


class Bench:
    def __init__(self, arguments):
        self.a = arguments
        self.work = arguments.work
        self.results = {}  # case -> list of measurements
        self.meta = {}
        self.env = dict(os.environ)
        self.env.update({
            "DATABASE_NAME": arguments.db, "UPLOADS_DIR": arguments.uploads, "ENV_FILE": f"{self.work}/app/.env",
            "APP_DIR": f"{self.work}/app", "PROGRESS_INTERVAL": "1h", "LOCK_TTL": "10m",
            "RESTORE_TERMINATE_CONNECTIONS": "true",
        })
        self.pg_bin = arguments.pg_bin
        self.input_bytes = None
        self.round = 0

    # Measuring ---------------------------------------------------------------------------------------------
    def measure(self, case, group, argv, env=None, output=None, log_phases=False):
        """Runs argv under /usr/bin/time -v; records wall seconds, peak RSS and the output's size. Before each
        case, untimed, the server is let settle (`settle`): no case pays for the work the one before it left."""
        timing = f"{self.work}/time.txt"
        self.settle()
        server_before = self.server_cpu()
        started = time.monotonic()
        process = subprocess.run(["/usr/bin/time", "-v", "-o", timing] + argv, env=env or self.env,
                                 capture_output=True, text=True)
        wall = time.monotonic() - started
        if process.returncode != 0:
            sys.stderr.write(process.stdout[-4000:] + process.stderr[-4000:])
            raise SystemExit(f"{case} failed with status {process.returncode}")
        report = open(timing).read()
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", report)[1]) * 1024
        # CPU seconds of the process and its children (not the server's): what the case costs in work, which
        # another load on the machine changes far less than it changes the wall time.
        cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", report)[1]) for kind in ("User", "System"))
        record = {"wall": wall, "rss": rss, "cpu": cpu, "server_cpu": self.server_cpu() - server_before,
                  "round": self.round}
        if output is not None:
            record["output"] = output() if callable(output) else output
        if log_phases:
            for name, pattern in PHASES:
                for line in (process.stdout + process.stderr).splitlines():
                    if (m := re.search(pattern, line)) and (seconds := parse_duration(m[1].strip())) is not None:
                        record[name] = seconds
        self.results.setdefault(case, {"group": group, "runs": []})["runs"].append(record)
        print(f"  {case:<34} {wall:7.2f} s  {rss / 2**20:7.1f} MB RSS"
              + (f"  {record['output'] / 1e6:9.1f} MB out" if record.get("output") else ""), flush=True)
        return process

    def server_cpu(self):
        """CPU seconds the PostgreSQL server has used so far, all its processes: the live ones' own (/proc/<pid>/stat
        utime and stime) and what the postmaster has collected from those that ended (its cutime and cstime): a
        backend's, a parallel worker's, the checkpointer's."""
        if not hasattr(self, "postmaster"):
            checkpointer = int(sh(f"{self.pg_bin}/psql -XAtq -d postgres -c \"SELECT pid FROM pg_stat_activity "
                                  "WHERE backend_type = 'checkpointer'\"", env=self.env).stdout)
            self.postmaster = int(open(f"/proc/{checkpointer}/stat").read().rsplit(")", 1)[1].split()[1])
        ticks = 0
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                # After the command's name: state, ppid, ..., utime (12th), stime, cutime, cstime.
                fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile: the postmaster's cutime has it
            if int(pid) == self.postmaster:
                ticks += sum(int(f) for f in fields[11:15])
            elif int(fields[1]) == self.postmaster:
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def settle(self):
        """Waits for autovacuum workers to finish (a restore leaves about half a minute of them, which would
        otherwise run during the next case), vacuums and analyzes the application's database so that none
        start during the case, then checkpoints and syncs what was written."""
        psql = f"{self.pg_bin}/psql -XAtq -d postgres"
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            busy = sh(f"{psql} -c \"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'\"",
                      env=self.env).stdout.strip()
            if busy == "0":
                break
            time.sleep(0.5)
        sh(f"{self.pg_bin}/psql -XAtq -d {self.a.db} -c 'VACUUM (ANALYZE)' && {psql} -c CHECKPOINT && sync", env=self.env)

    def store(self, name):
        path = f"{self.work}/stores/{name}"
        os.makedirs(path, exist_ok=True)
        return path

    def clear(self, path):
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)

    @staticmethod
    def archive_in(store):
        names = [n for n in os.listdir(store) if n.startswith("visual_backup_") and not n.endswith(".json")]
        return os.path.join(store, sorted(names)[-1])

    # The cases --------------------------------------------------------------------------------------------
    def job_env(self, store, **extra):
        env = dict(self.env)
        env["BACKUP_DIR"] = store
        env.update(extra)
        return env

    def backups(self):
        shell_store = self.store("shell")
        self.clear(shell_store)
        env = self.job_env(shell_store)
        self.measure("shell procedure backup", "backup", [f"{ROOT}/bench/runbook-backup.sh"], env=env,
                     output=lambda: os.path.getsize(self.archive_in(shell_store)))
        # gzip and gzip + age back to back: the cost of age is their ratio within a round.
        for case, store, extra in [
            ("backup-job gzip", "gzip", {}),
            ("backup-job gzip + age", "age", {"AGE_RECIPIENTS": self.a.recipient}),
            ("backup-job zstd", "zstd", {"BACKUP_COMPRESSION": "zstd"}),
        ]:
            path = self.store(store)
            self.clear(path)
            self.measure(case, "backup", [f"{self.a.bin}/backup-job"], env=self.job_env(path, **extra),
                         output=lambda p=path: os.path.getsize(self.archive_in(p)), log_phases=True)

    def restores(self):
        shell_archive = self.archive_in(self.store("shell"))
        self.measure("shell procedure restore", "restore", [f"{ROOT}/bench/runbook-restore.sh", shell_archive],
                     env=self.job_env(self.store("shell")))
        for case, store, extra in [
            ("restore-job gzip", "gzip", {}),
            ("restore-job gzip + age", "age", {"AGE_IDENTITY_FILE": self.a.identity_file}),
            ("restore-job zstd", "zstd", {}),
        ]:
            self.measure(case, "restore", [f"{self.a.bin}/restore-job"], env=self.job_env(self.store(store), **extra),
                         log_phases=True)
            # restore-job keeps the replaced database (RESTORE_KEEP_OLD, its default) until the next backup drops
            # it; dropped here, timed apart (DROP DATABASE forces a checkpoint: the restored data is flushed).
            self.measure("drop of the replaced database", "drop", ["bash", "-c", self.drop_replaced()])

    def drop_replaced(self):
        """The command that drops the databases restore-job replaced and kept."""
        psql = f"{self.pg_bin}/psql -XAt -d postgres"
        kept = sh(f"{psql} -c \"SELECT datname FROM pg_database WHERE datname LIKE '{self.a.db}_before_restore_%'\"",
                  env=self.env).stdout.split()
        return "; ".join(f"{psql} -qc 'DROP DATABASE \"{name}\"'" for name in kept) or "true"

    def floors(self):
        pg_dump = f"{self.pg_bin}/pg_dump"
        self.measure("floor: pg_dump -Fc -Z0 | cat", "floor",
                     ["bash", "-c", f"{pg_dump} -Fc -Z0 -d {self.a.db} | cat > /dev/null"])
        parent, base = os.path.dirname(self.a.uploads), os.path.basename(self.a.uploads)
        self.measure("floor: tar cf - uploads | cat", "floor",
                     ["bash", "-c", f"tar cf - -C {parent} {base} | cat > /dev/null"])
        out = f"{self.work}/floor.out"
        for case, command in [
            ("floor: zstd -3 -T2 alone", f"zstd -q -3 -T2 -c {self.a.floor_input} > {out}"),
            ("floor: pigz -6 -p2 alone", f"pigz -6 -p 2 -c {self.a.floor_input} > {out}"),
        ]:
            self.measure(case, "floor", ["bash", "-c", command], output=lambda: os.path.getsize(out))
            os.remove(out)

    def restore_floors(self):
        """What a restore cannot go below here: pg_restore alone, from the uncompressed dump file, into a new
        database with two jobs and lz4 TOAST compression (as restore-job does); and zstd inflating the archive
        alone."""
        bin = self.pg_bin
        sh(f"{bin}/dropdb --if-exists floor_restore && {bin}/createdb -T template0 floor_restore", env=self.env)
        env = dict(self.env, PGOPTIONS="-c default_toast_compression=lz4")
        self.measure("floor: pg_restore -j2 of the dump file", "restore floor",
                     ["bash", "-c", f"{bin}/pg_restore -j2 --exit-on-error -d floor_restore {self.a.floor_dump}"], env=env)
        sh(f"{bin}/dropdb floor_restore", env=self.env)
        archive = self.archive_in(self.store("zstd"))
        self.measure("floor: zstd -d of the archive | cat", "restore floor",
                     ["bash", "-c", f"zstd -q -dc {archive} | cat > /dev/null"])

    def restic(self):
        repo = f"{self.work}/restic"
        shutil.rmtree(repo, ignore_errors=True)
        env = dict(self.env)
        env.update({"RESTIC_REPOSITORY": repo, "RESTIC_PASSWORD_FILE": self.a.restic_password_file,
                    "RESTIC_CACHE_DIR": f"{self.work}/restic-cache"})
        shutil.rmtree(env["RESTIC_CACHE_DIR"], ignore_errors=True)
        sh("restic init --quiet", env=env)
        backup = (f"restic backup --quiet --tag uploads {self.a.uploads} && "
                  f"{self.pg_bin}/pg_dump -Fc -Z0 -d {self.a.db} | "
                  f"restic backup --quiet --tag db --stdin --stdin-filename database.dump")
        before = folder_bytes(repo)
        self.measure("restic first backup", "backup", ["bash", "-c", backup], env=env,
                     output=lambda: folder_bytes(repo) - before)
        before = folder_bytes(repo)
        self.measure("restic second backup", "backup", ["bash", "-c", backup], env=env,
                     output=lambda: folder_bytes(repo) - before)
        target = f"{self.work}/restic-restore"
        shutil.rmtree(target, ignore_errors=True)
        restore = (f"restic restore --quiet latest --tag uploads --target {target} && "
                   f"restic dump --quiet latest --tag db database.dump | "
                   f"{self.pg_bin}/pg_restore --clean --if-exists -d {self.a.db}")
        self.measure("restic restore", "restore", ["bash", "-c", restore], env=env)
        shutil.rmtree(target, ignore_errors=True)

    def small_rss(self):
        """backup-job's peak RSS on the small dataset (the large one's comes from the main rounds)."""
        for case, extra in [("backup-job gzip", {}), ("backup-job zstd", {"BACKUP_COMPRESSION": "zstd"})]:
            path = self.store("small")
            self.clear(path)
            env = self.job_env(path, DATABASE_NAME=self.a.small_db, UPLOADS_DIR=self.a.small_uploads, **extra)
            self.measure(f"{case} (small)", "small", [f"{self.a.bin}/backup-job"], env=env,
                         output=lambda p=path: os.path.getsize(self.archive_in(p)))

    # The dataset and the machine ---------------------------------------------------------------------------
    def describe(self):
        psql = f"{self.pg_bin}/psql"
        size = lambda db: int(sh(f"{psql} -XAtc \"SELECT pg_database_size('{db}')\" -d {db}", env=self.env).stdout)
        dump_bytes = lambda db: int(sh(f"{self.pg_bin}/pg_dump -Fc -Z0 -d {db} | wc -c", env=self.env).stdout)
        files = lambda path: sum(len(f) for _, _, f in os.walk(path))
        self.meta = {
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "machine": machine(),
            "versions": versions(self.pg_bin, self.env),
            "parameters": self.a.parameters,
            "runs": self.a.runs,
            "large": {"database_size": size(self.a.db), "dump_bytes": dump_bytes(self.a.db),
                      "uploads_bytes": folder_bytes(self.a.uploads), "uploads_files": files(self.a.uploads)},
            "small": {"database_size": size(self.a.small_db), "dump_bytes": dump_bytes(self.a.small_db),
                      "uploads_bytes": folder_bytes(self.a.small_uploads), "uploads_files": files(self.a.small_uploads)},
        }
        large = self.meta["large"]
        self.input_bytes = large["dump_bytes"] + large["uploads_bytes"]
        print(json.dumps(self.meta, indent=1), flush=True)

    def profile(self):
        """Where a restore's time goes, the server included: a system-wide `perf record` of one restore-job
        (gzip), summed by process and by library, into profile-restore.txt beside the report."""
        data, env = f"{self.work}/perf.data", self.job_env(self.store("gzip"))
        sh(f"perf record -a -F 499 -o {data} -- {self.a.bin}/restore-job", env=env)
        sh(self.drop_replaced(), env=self.env)
        report = lambda sort: sh(f"perf report -i {data} --stdio --sort {sort} --percent-limit 1 2>/dev/null | "
                                 "grep -v '^#' | grep -v '^$' | sed 's/[ -]*$//'", env=self.env, check=False).stdout
        with open(f"{self.a.out}/profile-restore.txt", "w") as handle:
            handle.write(f"perf record -a of restore-job (gzip), {self.meta['machine']}, {self.meta['date']}\n"
                         "restore-job's threads show as oot.default-qos (the kernel keeps 15 characters of "
                         "org.swift.root.default-qos) and restore-job; swapper is the idle processor.\n\n"
                         f"By process:\n{report('comm')}\nBy process and library:\n{report('comm,dso')}\n"
                         f"Functions over 1%:\n{report('comm,dso,symbol')}")
        os.remove(data)

    def run(self):
        self.describe()
        for round_number in range(1, self.a.runs + 1):
            print(f"Round {round_number} of {self.a.runs}", flush=True)
            self.round = round_number
            self.backups()
            self.floors()
            self.restic()
            self.restores()
            self.restore_floors()
            self.small_rss()
        raw = {"meta": self.meta, "input_bytes": self.input_bytes, "results": self.results}
        with open(f"{self.a.out}/speed.raw", "w") as handle:
            json.dump(raw, handle, indent=1)
        subprocess.run(["/usr/bin/python3", f"{ROOT}/bench/report.py", f"{self.a.out}/speed.raw", self.a.out], check=True)
        if self.a.profile:
            self.profile()


def main():
    parser = argparse.ArgumentParser()
    for name in ["work", "bin", "pg-bin", "db", "uploads", "small-db", "small-uploads", "recipient", "identity-file",
                 "restic-password-file", "floor-input", "floor-dump", "out", "parameters"]:
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="also profile one restore-job with perf")
    Bench(parser.parse_args()).run()


if __name__ == "__main__":
    main()
