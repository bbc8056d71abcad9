#!/usr/bin/env python3
"""The restore benchmark's cases and report. Called by bench/restore.sh, which builds the release binaries,
starts PostgreSQL and makes each data set in turn; the environment carries PG* for the server.

  restore.py measure --dataset NAME --work W --bin B --pg-bin P --db D --uploads U --recipient R \\
      --identity-file F --runs N --parameters TEXT --raw OUT/restore.raw --out OUT [--profile]
  restore.py report OUT/restore.raw OUT

`measure` makes the archives once (the runbook's shell script, backup-job gzip, zstd and gzip + age), the
uncompressed dump and one server-side COPY file per table, then runs RUNS rounds, every case once per round:
the shell restore, restore-job (gzip, zstd, gzip + age), and the floors: pg_restore -j2 of the dump file, and
the server's COPY of every table from its file into a database holding only the schema (no index), followed by
the index builds and constraints (pg_restore --section=post-data -j2); and the least work any verified restore
of the zstd archive does (`zstd -d` of it, `tar -x` of the uploads, the SHA-256 rate of `openssl speed`). It adds
the data set to the raw file
(JSON); `report` turns that file into restore.md. Measuring is bench.py's: GNU time, wall, CPU and peak RSS of
the process and its children (not the server), the server settled before each case.
"""
import argparse
import json
import os
import pwd
import re
import shutil
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in bench/ from importing bench.py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import ROOT, Bench, folder_bytes, machine, parse_duration, sh, versions  # noqa: E402

# restore-job's targets against the shell restore of the same data (issue 21), by data set.
TARGETS = {"pgbench20": 0.40, "default": 0.30}
# The last: restore-job with no table split (its index builds still get parallel workers and 256 MB), the
# baseline of the split in the same rounds.
UNSPLIT = "restore-job zstd, no table split (RESTORE_SPLIT_TABLE_SIZE=0)"
JOBS = ["restore-job gzip", "restore-job zstd", "restore-job gzip + age", UNSPLIT]
COPY_FLOOR = "floor: COPY of every table from a server file"
INDEX_FLOOR = "floor: post-data (indexes, constraints), pg_restore -j2"
SUM_FLOOR = "floor: COPY + post-data"
# The client's share of the least work any verified restore of the zstd archive does: inflating it and writing the
# uploads, measured with the tools alone; hashing is computed from `openssl speed` (see `least_work`).
INFLATE = "least work: zstd -d of the zstd archive, to /dev/null"
WRITE_UPLOADS = "least work: the uploads written (tar -x of an uncompressed tar of them)"
DURATION = r"(\d+ ms|[\d.]+ s|\d+m \d+s)"


def steps(output):
    """restore-job's own lines about the steps of its restore into the new database: "Restored the schema, 37 ms
    in", "Restored the data of pgbench_accounts (19.2 MB), 1.9 s in", "Restored the indexes of pgbench_accounts,
    2.6 s in", where the time is when the step finished, counted from the start of that restore. Returns
    {step: seconds} (a step: the line's words between "Restored" and the time) and the lines themselves. A line
    ending "… in 1.2 s" instead (a duration) is kept as well, its step marked "(took)"."""
    found, lines = {}, []
    for line in output.splitlines():
        if not (m := re.search(r"Restored (the schema.*|the data of .*|the indexes of .*)$", line.strip())):
            continue
        text = m[1]
        if at := re.fullmatch(rf"(.*), {DURATION} in", text):
            step, seconds = at[1], parse_duration(at[2])
        elif took := re.fullmatch(rf"(.*) in {DURATION}", text):
            step, seconds = f"{took[1]} (took)", parse_duration(took[2])
        else:
            continue
        if seconds is not None:
            found[step] = seconds
            lines.append(f"Restored {text}")
    return found, lines


class RestoreBench(Bench):
    def __init__(self, arguments):
        super().__init__(arguments)
        self.dump = f"{self.work}/database.dump"
        self.copies = f"{self.work}/copies"
        self.tables = []  # (table, its COPY file), the largest first

    # Made once, before the rounds --------------------------------------------------------------------------
    def prepare(self):
        print("Making the archives, the dump and the COPY files (once)", flush=True)
        for store, command, extra in [
            ("shell", [f"{ROOT}/bench/runbook-backup.sh"], {}),
            ("gzip", [f"{self.a.bin}/backup-job"], {}),
            ("zstd", [f"{self.a.bin}/backup-job"], {"BACKUP_COMPRESSION": "zstd"}),
            ("age", [f"{self.a.bin}/backup-job"], {"AGE_RECIPIENTS": self.a.recipient}),
        ]:
            path = self.store(store)
            self.clear(path)
            process = subprocess.run(command, env=self.job_env(path, **extra), capture_output=True, text=True)
            if process.returncode != 0:
                sys.stderr.write(process.stdout[-4000:] + process.stderr[-4000:])
                raise SystemExit(f"the {store} backup failed with status {process.returncode}")
        sh(f"{self.pg_bin}/pg_dump -Fc -Z0 -d {self.a.db} -f {self.dump}", env=self.env)
        # The least work's inputs: the uploads as one uncompressed tar, the inflated size of the zstd archive, and
        # the rate at which this machine's OpenSSL hashes (1 MiB blocks, as restore-job hashes), so that hashing
        # counts at its own cost, without reading a file.
        sh(f"tar -cf {self.work}/uploads.tar -C {self.a.uploads} .")
        self.zstd_archive = self.archive_in(self.store("zstd"))
        self.inflated_bytes = int(sh(f"set -o pipefail; zstd -dc {self.zstd_archive} | wc -c").stdout)
        speed = sh("set -o pipefail; openssl speed -evp sha256 -bytes 1048576 -seconds 2 2>/dev/null | tail -1").stdout
        if not (rate := re.fullmatch(r"sha256\s+([\d.]+)k\s*", speed)):
            raise SystemExit(f"openssl speed printed an unexpected line: {speed!r}")
        self.sha256_rate = float(rate[1]) * 1000  # openssl's "k" is 1000 bytes a second
        # Written by the server (COPY TO a file needs a superuser; the benchmark's PGUSER is postgres), so the
        # folder is the server's user's.
        os.makedirs(self.copies, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.copies, user.pw_uid, user.pw_gid)
        listing = sh(f"{self.pg_bin}/psql -XAt -d {self.a.db} -c \"SELECT format('%I.%I', n.nspname, c.relname) "
                     "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND "
                     "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' "
                     "ORDER BY pg_table_size(c.oid) DESC\"", env=self.env).stdout.splitlines()
        for number, table in enumerate(listing):
            path = f"{self.copies}/{number}.copy"
            sh(f"{self.pg_bin}/psql -XAtq -v ON_ERROR_STOP=1 -d {self.a.db} -c \"COPY {table} TO '{path}'\"",
               env=self.env)
            self.tables.append((table, path))

    def describe(self):
        psql = f"{self.pg_bin}/psql -XAt -d {self.a.db}"
        database_size = int(sh(f"{psql} -c \"SELECT pg_database_size('{self.a.db}')\"", env=self.env).stdout)
        copy_bytes = {table: os.path.getsize(path) for table, path in self.tables}
        largest = max(copy_bytes, key=copy_bytes.get)
        return {
            "database_size": database_size, "dump_bytes": os.path.getsize(self.dump),
            "uploads_bytes": folder_bytes(self.a.uploads),
            "uploads_files": sum(len(files) for _, _, files in os.walk(self.a.uploads)),
            "tables": len(self.tables), "copy_bytes": sum(copy_bytes.values()),
            "largest_table": largest, "largest_copy_bytes": copy_bytes[largest],
            "largest_size": int(sh(f"{psql} -c \"SELECT pg_table_size('{largest}')\"", env=self.env).stdout),
            "parameters": self.a.parameters, "runs": self.a.runs,
            "zstd_archive_bytes": os.path.getsize(self.zstd_archive),
            "inflated_bytes": self.inflated_bytes, "sha256_bytes_per_s": self.sha256_rate,
        }

    # One round ---------------------------------------------------------------------------------------------
    def round_of_cases(self):
        shell_store = self.store("shell")
        self.measure("shell procedure restore", "restore",
                     [f"{ROOT}/bench/runbook-restore.sh", self.archive_in(shell_store)], env=self.job_env(shell_store))
        for case, store, extra in [
            ("restore-job gzip", "gzip", {}),
            ("restore-job zstd", "zstd", {}),
            ("restore-job gzip + age", "age", {"AGE_IDENTITY_FILE": self.a.identity_file}),
            (UNSPLIT, "zstd", {"RESTORE_SPLIT_TABLE_SIZE": "0"}),
        ]:
            process = self.measure(case, "restore", [f"{self.a.bin}/restore-job"],
                                   env=self.job_env(self.store(store), **extra), log_phases=True)
            record = self.results[case]["runs"][-1]
            record["steps"], record["lines"] = steps(process.stdout + process.stderr)
            # restore-job keeps the replaced database (RESTORE_KEEP_OLD, its default); dropped here, timed apart.
            self.measure("drop of the replaced database", "drop", ["bash", "-c", self.drop_replaced()])
        self.floors()

    def floors(self):
        """pg_restore -j2 of the uncompressed dump file into a new database (lz4 TOAST compression, as restore-job
        sets it), as run.sh; then the floor of a restore that streams rows into tables with no index: the schema
        alone (untimed), the server's COPY of each table from a file it reads itself (one connection, the tables
        one after the other), then the indexes and constraints as pg_restore -j2 builds them."""
        bin, env = self.pg_bin, dict(self.env, PGOPTIONS="-c default_toast_compression=lz4")
        sh(f"{bin}/dropdb --if-exists floor_restore && {bin}/createdb -T template0 floor_restore", env=self.env)
        self.measure("floor: pg_restore -j2 of the dump file", "restore floor",
                     ["bash", "-c", f"{bin}/pg_restore -j2 --exit-on-error -d floor_restore {self.dump}"], env=env)
        sh(f"{bin}/dropdb floor_restore", env=self.env)

        sh(f"{bin}/dropdb --if-exists floor_copy && {bin}/createdb -T template0 floor_copy && "
           f"{bin}/pg_restore --section=pre-data --exit-on-error -d floor_copy {self.dump}", env=self.env)
        # No autovacuum on the loaded tables between the two timed parts: the index builds read the pages as
        # COPY left them, as they do in a restore.
        script = f"{self.work}/copy.sql"
        with open(script, "w") as handle:
            for table, _ in self.tables:
                handle.write(f"ALTER TABLE {table} SET (autovacuum_enabled = false);\n")
        sh(f"{bin}/psql -XAtq -v ON_ERROR_STOP=1 -d floor_copy -f {script}", env=self.env)
        with open(script, "w") as handle:
            for table, path in self.tables:
                handle.write(f"COPY {table} FROM '{path}';\n")
        self.measure(COPY_FLOOR, "restore floor",
                     ["bash", "-c", f"{bin}/psql -XAtq -v ON_ERROR_STOP=1 -d floor_copy -f {script}"], env=env)
        self.measure(INDEX_FLOOR, "restore floor",
                     ["bash", "-c", f"{bin}/pg_restore --section=post-data -j2 --exit-on-error -d floor_copy "
                                    f"{self.dump}"], env=env)
        sh(f"{bin}/dropdb floor_copy", env=self.env)

        self.measure(INFLATE, "least work",
                     ["bash", "-c", f"zstd -dc {self.zstd_archive} > /dev/null"])
        written = f"{self.work}/uploads-written"
        self.clear(written)
        self.measure(WRITE_UPLOADS, "least work", ["tar", "-xf", f"{self.work}/uploads.tar", "-C", written])
        shutil.rmtree(written)

    def profile(self, machine_text):
        """Where a restore-job's time goes, the server included: a system-wide `perf record` of one restore-job
        (gzip, the default compression), summed by process, by library and by function, after restore-job's own
        lines about its phases; into profile-restore.txt."""
        data, env = f"{self.work}/perf.data", self.job_env(self.store("gzip"))
        self.settle()
        recorded = sh(f"perf record -a -F 499 -o {data} -- {self.a.bin}/restore-job", env=env)
        sh(self.drop_replaced(), env=self.env)
        own = [line for line in (recorded.stdout + recorded.stderr).splitlines()
               if re.search(r"Restored|Verified in|Downloaded|Read ", line)]
        report = lambda sort: sh(f"perf report -i {data} --stdio --sort {sort} --percent-limit 1 2>/dev/null | "
                                 "grep -v '^#' | grep -v '^$' | sed 's/[ -]*$//'", env=self.env, check=False).stdout
        with open(f"{self.a.out}/profile-restore.txt", "w") as handle:
            handle.write(f"perf record -a of restore-job (gzip) on the {self.a.dataset} data set "
                         f"({self.a.parameters}), {machine_text}, {time.strftime('%Y-%m-%d', time.gmtime())}\n"
                         "restore-job's threads show as oot.default-qos (the kernel keeps 15 characters of "
                         "org.swift.root.default-qos) and restore-job; swapper is the idle processor.\n\n"
                         "restore-job's own lines about its phases:\n" + "\n".join(own) + "\n\n"
                         f"By process:\n{report('comm')}\nBy process and library:\n{report('comm,dso')}\n"
                         f"Functions over 1%:\n{report('comm,dso,symbol')}")
        os.remove(data)

    def run(self):
        self.prepare()
        description = self.describe()
        print(json.dumps(description, indent=1), flush=True)
        for round_number in range(1, self.a.runs + 1):
            print(f"{self.a.dataset}: round {round_number} of {self.a.runs}", flush=True)
            self.round = round_number
            self.round_of_cases()
        raw = json.load(open(self.a.raw)) if os.path.exists(self.a.raw) else {"datasets": {}}
        raw["meta"] = {"date": time.strftime("%Y-%m-%d", time.gmtime()), "machine": machine(), "cores": os.cpu_count(),
                       "versions": {k: v for k, v in versions(self.pg_bin, self.env).items()
                                    if k in ("PostgreSQL", "GNU tar", "gzip", "zstd", "libarchive", "libdeflate")}}
        raw["datasets"][self.a.dataset] = {"description": description, "results": self.results}
        if self.a.profile:
            raw["profiled"] = self.a.dataset
        with open(self.a.raw, "w") as handle:
            json.dump(raw, handle, indent=1)
        if self.a.profile:
            self.profile(raw["meta"]["machine"])


# The report ------------------------------------------------------------------------------------------------
def report(raw_path, out):
    raw = json.load(open(raw_path))
    meta = raw["meta"]
    lines = [
        f"# Restore speed against the runbook's shell restore, and the floors ({meta['date']})",
        "",
        f"Machine: {meta['machine']}. Made by `bench/restore.sh`. Each case ran the number of times given below, "
        "alternating with the others (one round runs every case once); the figures are the median and the range. "
        "Ratios are against the shell restore of the same data set in this same invocation: of the medians, and "
        "(same-round) the median over the rounds of each round's own ratio, steadier when the machine's load "
        "drifts. Peak RSS is GNU time's maximum resident set size of the process and its children (not the "
        "PostgreSQL server); CPU s is their user and system time, the server's not included; server CPU s is the "
        "PostgreSQL server's own (all its processes, from /proc) during the case.",
        "",
        "The floors: `pg_restore -j2` of the uncompressed dump file into a new database; and the server's COPY of "
        "the same rows from a local file, each table's text-format file (written beforehand by `COPY … TO`) read by "
        "the server itself into a database holding only the schema, no index (`pg_restore --section=pre-data`, "
        "untimed), one table after the other on one connection, followed by the indexes and constraints "
        "(`pg_restore --section=post-data -j2`); the sum is taken round by round. Both floors start from "
        "uncompressed data on local disk, store TOAST with lz4 as restore-job does, verify nothing and leave the "
        "uploads aside; restore-job reads the "
        "compressed archive, verifies it as it streams and restores the uploads too.",
        "",
        "The least work: an estimate of what a restore that verifies the zstd archive as restore-job does must "
        "spend, each part measured alone: the archive inflated (`zstd -d` to /dev/null), the uploads written (`tar -x` of an "
        "uncompressed tar of them, from the page cache) and the SHA-256 of the stored archive and of the dump "
        "(whose blocks are checked before the server gets them; the uploads are not hashed one by one, the stored "
        "archive's hash covers them), counted at the rate `openssl speed` gives on this machine. With the server's "
        "CPU in the pg_restore -j2 floor, over the machine's processors, it estimates from below the wall time of "
        "such a restore here (parsing the dump, sending its rows and staging left out). It rests on choices that "
        "are not all necessary: the COPY floor's server spends less than pg_restore -j2's; tar -x reads its tar "
        "and zstd -d checks zstd's frame checksum.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
    ]
    targets = []
    for name, dataset in raw["datasets"].items():
        d, results = dataset["description"], dataset["results"]
        add_sum_floor(results)

        def stat(case, field="wall"):
            values = [run[field] for run in results.get(case, {}).get("runs", []) if field in run]
            return (statistics.median(values), min(values), max(values)) if values else (None, None, None)

        def per_round(case, base, field="wall"):
            base_by_round = {run["round"]: run[field] for run in results[base]["runs"] if field in run}
            ratios = [run[field] / base_by_round[run["round"]] for run in results[case]["runs"]
                      if run["round"] in base_by_round and field in run]
            return statistics.median(ratios) if ratios else None

        shell = stat("shell procedure restore")[0]
        floor = stat(SUM_FLOOR)[0]
        lines += [
            "", f"## {name}", "",
            f"Parameters: {d['parameters']}; {d['runs']} rounds.",
            f"Data: database {d['database_size'] / 1e9:.2f} GB on disk ({d['dump_bytes'] / 1e9:.2f} GB as "
            f"`pg_dump -Fc -Z0`, {d['copy_bytes'] / 1e9:.2f} GB of COPY text in {d['tables']} tables), uploads "
            f"{d['uploads_bytes'] / 1e9:.2f} GB in {d['uploads_files']:,} files. The largest table, "
            f"`{d['largest_table']}`, is {d['largest_size'] / 1e6:,.0f} MB on disk and "
            f"{d['largest_copy_bytes'] / 1e6:,.0f} MB of COPY text, "
            f"{d['largest_copy_bytes'] / d['copy_bytes'] * 100:.0f}% of the rows' text.",
            "",
            "| case | median s | min–max s | CPU s | server CPU s | peak RSS MB | ratio to shell | same-round ratio | "
            "over the COPY + post-data floor | same-round |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for case in ["shell procedure restore", *JOBS, "floor: pg_restore -j2 of the dump file", COPY_FLOOR,
                     INDEX_FLOOR, SUM_FLOOR, INFLATE, WRITE_UPLOADS]:
            if case not in results:
                continue
            median, low, high = stat(case)
            cpu, rss = stat(case, "cpu")[0], stat(case, "rss")[0]
            server = stat(case, "server_cpu")[0]
            server_text = "" if server is None else f"{server:.1f}"
            over = f"{median / floor:.2f}x | {per_round(case, SUM_FLOOR):.2f}x" if case in JOBS else " | "
            lines.append(f"| {case} | {median:.2f} | {low:.2f}–{high:.2f} | {cpu:.1f} | {server_text} | {rss / 2**20:.0f} | "
                         f"{median / shell:.2f}x | {per_round(case, 'shell procedure restore'):.2f}x | {over} |")
        drop = stat("drop of the replaced database")[0]
        if drop is not None:
            lines += ["", "restore-job keeps the database it replaced until the next backup drops it "
                      "(RESTORE_KEEP_OLD, its default); the benchmark drops it after each restore-job, timed apart: "
                      f"{drop:.1f} s "
                      "(median; DROP DATABASE forces a checkpoint, which flushes the restored data to disk)."]
        lines += ["", "Where restore-job's time goes, by its own log lines (medians): verify, reading and verifying "
                  "the archive (\"Verified in …\"); pg_restore, the restore into the new database (\"Restored the "
                  "dump into … in …\"); the two overlap.", ""]
        for case in JOBS:
            if case in results:
                parts = [f"{phase} {stat(case, phase)[0]:.1f} s" for phase in ("verify", "pg_restore")
                         if stat(case, phase)[0] is not None]
                lines.append(f"- {case} (of {stat(case)[0]:.1f} s): " + (", ".join(parts) or "no phase lines"))
        # The steps of the restore into the new database, from one case (zstd: the one compared with the floor).
        timeline = {}
        for run in results.get("restore-job zstd", {}).get("runs", []):
            for step, seconds in run.get("steps", {}).items():
                timeline.setdefault(step, []).append(seconds)
        if timeline:
            lines += ["", "restore-job zstd's steps (its lines \"Restored the data of …\", \"Restored the indexes of "
                      "…\"): when each finished, in seconds from the start of the restore into the new database; "
                      "the steps run side by side, so the last to finish is the critical path.", "",
                      "| step | finished at, median s | min–max s | rounds |", "|---|---|---|---|"]
            for step in sorted(timeline, key=lambda s: statistics.median(timeline[s])):
                values = timeline[step]
                lines.append(f"| {step.replace('|', '&#124;')} | {statistics.median(values):.2f} | "
                             f"{min(values):.2f}–{max(values):.2f} | {len(values)} |")
        else:
            lines += ["", "restore-job printed no lines about its steps (\"Restored the data of …\", \"Restored the "
                      "indexes of …\") in this build."]
        if name in TARGETS:
            limit = TARGETS[name]
            for group in (["restore-job gzip", "restore-job zstd"], ["restore-job gzip + age"]):
                group = [c for c in group if c in results]
                if group:
                    targets.append((
                        f"{name}: {' / '.join(group)} ≤ {limit:.2f}x the shell restore",
                        " / ".join(f"{stat(c)[0] / shell:.2f}x ({per_round(c, 'shell procedure restore'):.2f}x)"
                                   for c in group),
                        all(stat(c)[0] / shell <= limit for c in group)))
        if UNSPLIT in results and "restore-job zstd" in results:
            targets.append((f"{name}: restore-job zstd against the same with no table split (not a target)",
                            f"{stat('restore-job zstd')[0] / stat(UNSPLIT)[0]:.2f}x "
                            f"({per_round('restore-job zstd', UNSPLIT):.2f}x)", None))
        cores = meta.get("cores")
        zstd_server = stat("restore-job zstd", "server_cpu")[0]
        if cores and zstd_server is not None:
            # Every processor busy all the time, the least wall time this work could take here.
            bound = (stat("restore-job zstd", "cpu")[0] + zstd_server) / cores
            targets.append((f"{name}: restore-job zstd's processor time, its own and the server's, over {cores} "
                            "processors (not a target: the least wall time that work could take here)",
                            f"{bound:.2f} s, {bound / shell:.2f}x the shell restore", None))
        least = least_work(d, stat, cores)
        if least is not None:
            seconds, text = least
            targets.append((f"{name}: the least work any verified restore of the zstd archive does, over {cores} "
                            f"processors (not a target: {text})", f"{seconds:.2f} s, {seconds / shell:.2f}x the shell "
                            "restore", None))
        if floor is not None and "restore-job zstd" in results:
            targets.append((f"{name}: restore-job zstd over the COPY + post-data floor (not a target)",
                            f"{stat('restore-job zstd')[0] / floor:.2f}x "
                            f"({per_round('restore-job zstd', SUM_FLOOR):.2f}x)"
                            f"; the floor is {floor / shell:.2f}x the shell restore", None))
    lines += ["", "## Targets", "", "Ratios of the medians (in brackets: the median of the same-round ratios); met is "
              "judged on the ratio of the medians.", "", "| target | measured | met |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {'—' if ok is None else 'yes' if ok else '**no**'} |" for t, m, ok in targets]
    if "profiled" in raw:
        lines += ["", "Where a restore-job's time goes, the server included: "
                  "[profile-restore.txt](profile-restore.txt) "
                  f"(`PROFILE=1`: perf, system-wide, one restore-job gzip on {raw['profiled']}, after the rounds)."]
    lines.append("")
    open(f"{out}/restore.md", "w").write("\n".join(lines))
    print("\n".join(lines))


def least_work(d, stat, cores):
    """The least processor time any restore of the zstd archive that verifies it as restore-job does must spend
    here, spread over every processor with none idle: the server's CPU in the pg_restore -j2 floor (PostgreSQL's own
    parallel restore of the uncompressed dump, taken as the least a restore over client connections makes it do
    here: an assumption, the COPY floor's server spends less), the
    archive inflated (zstd -d alone), the SHA-256 of the stored archive and of the dump (at `openssl speed`'s rate,
    no file read; the uploads are not hashed one by one, the stored archive's hash covers them), and the uploads
    written (tar -x of an uncompressed tar). Left out, so that this is a lower bound: parsing, sending the rows to
    the server, staging. Returns (seconds, what it sums) or None."""
    server = stat("floor: pg_restore -j2 of the dump file", "server_cpu")[0]
    inflate, write = stat(INFLATE, "cpu")[0], stat(WRITE_UPLOADS, "cpu")[0]
    rate = d.get("sha256_bytes_per_s")
    if None in (server, inflate, write, rate, cores):
        return None
    hashed = d["zstd_archive_bytes"] + d["dump_bytes"]
    hashing = hashed / rate
    total = server + inflate + hashing + write
    return total / cores, (f"the server {server:.2f} s + inflating {inflate:.2f} s + SHA-256 of "
                           f"{hashed / 1e9:.2f} GB {hashing:.2f} s + the "
                           f"uploads written {write:.2f} s = {total:.2f} processor-seconds")


def add_sum_floor(results):
    """The COPY floor plus the post-data floor of the same round, as one case."""
    if COPY_FLOOR not in results or INDEX_FLOOR not in results:
        return
    index_by_round = {run["round"]: run for run in results[INDEX_FLOOR]["runs"]}
    runs = []
    for run in results[COPY_FLOOR]["runs"]:
        if (other := index_by_round.get(run["round"])) is not None:
            runs.append({"wall": run["wall"] + other["wall"], "cpu": run["cpu"] + other["cpu"],
                         "rss": max(run["rss"], other["rss"]), "round": run["round"]})
            if "server_cpu" in run and "server_cpu" in other:
                runs[-1]["server_cpu"] = run["server_cpu"] + other["server_cpu"]
    results[SUM_FLOOR] = {"group": "restore floor", "runs": runs}


def main():
    if sys.argv[1:2] == ["report"]:
        report(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["measure"])
    for name in ["dataset", "work", "bin", "pg-bin", "db", "uploads", "recipient", "identity-file", "parameters",
                 "raw", "out"]:
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="also profile one restore-job with perf")
    RestoreBench(parser.parse_args()).run()


if __name__ == "__main__":
    main()
