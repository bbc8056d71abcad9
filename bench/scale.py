#!/usr/bin/env python3
"""How the cost grows: backup-job and restore-job (zstd) at several sizes of the same kind of data. Called by
bench/scale.sh, which makes each size's data, calls `measure`, then drops it before the next size.

  scale.py measure --factor F --work W --bin B --pg-bin P --db D --uploads U --runs N --parameters TEXT \\
      --raw OUT/scaling.raw
  scale.py report OUT/scaling.raw OUT

`measure` runs RUNS rounds of backup-job zstd then restore-job zstd of that backup (the replaced database
dropped after it, untimed), measured as bench.py measures (GNU time: wall, CPU, peak RSS of the process and its
children, not the server; the server settled before each case), and adds the size to the raw file (JSON).
`report` writes scaling.md and scaling.png. Input is what a backup carries: the database as an uncompressed
custom dump (`pg_dump -Fc -Z0`, its size) plus the uploads.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in bench/ from importing bench.py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import Bench, folder_bytes, machine, sh, versions  # noqa: E402
from restore import steps  # noqa: E402

# Growth allowed from the smallest size to the others: time per GB at most linear (within run-to-run noise),
# peak memory flat.
LINEAR = 1.15
FLAT = 0.20
CASES = ["backup-job zstd", "restore-job zstd"]


class ScaleBench(Bench):
    def run(self):
        size = f"SELECT pg_database_size('{self.a.db}')"
        description = {
            "factor": self.a.factor, "parameters": self.a.parameters, "runs": self.a.runs,
            "database_size": int(sh(f"{self.pg_bin}/psql -XAt -d {self.a.db} -c \"{size}\"", env=self.env).stdout),
            "dump_bytes": int(sh(f"{self.pg_bin}/pg_dump -Fc -Z0 -d {self.a.db} | wc -c", env=self.env).stdout),
            "uploads_bytes": folder_bytes(self.a.uploads),
        }
        print(json.dumps(description), flush=True)
        store = self.store("zstd")
        for round_number in range(1, self.a.runs + 1):
            print(f"x{self.a.factor}: round {round_number} of {self.a.runs}", flush=True)
            self.round = round_number
            self.clear(store)
            self.measure("backup-job zstd", "backup", [f"{self.a.bin}/backup-job"],
                         env=self.job_env(store, BACKUP_COMPRESSION="zstd"),
                         output=lambda: os.path.getsize(self.archive_in(store)), log_phases=True)
            process = self.measure("restore-job zstd", "restore", [f"{self.a.bin}/restore-job"],
                                   env=self.job_env(store), log_phases=True)
            # When each step of the restore into the new database finished: the critical path at this size.
            record = self.results["restore-job zstd"]["runs"][-1]
            record["steps"], record["lines"] = steps(process.stdout + process.stderr)
            for line in record["lines"]:
                print(f"    {line}", flush=True)
            sh(self.drop_replaced(), env=self.env)
        self.clear(store)
        raw = json.load(open(self.a.raw)) if os.path.exists(self.a.raw) else {"sizes": []}
        raw["meta"] = {"date": time.strftime("%Y-%m-%d", time.gmtime()), "machine": machine(),
                       "versions": {k: v for k, v in versions(self.pg_bin, self.env).items()
                                    if k in ("PostgreSQL", "zstd", "libarchive")}}
        raw["sizes"].append({"description": description, "results": self.results})
        with open(self.a.raw, "w") as handle:
            json.dump(raw, handle, indent=1)


def report(raw_path, out):
    raw = json.load(open(raw_path))
    meta, sizes = raw["meta"], sorted(raw["sizes"], key=lambda size: size["description"]["factor"])
    stat = lambda size, case, field="wall": (
        lambda values: (statistics.median(values), min(values), max(values)))(
        [run[field] for run in size["results"][case]["runs"]])
    gigabytes = lambda size: (size["description"]["dump_bytes"] + size["description"]["uploads_bytes"]) / 1e9
    per_gb = lambda size, case: stat(size, case)[0] / gigabytes(size)
    rss = lambda size, case: stat(size, case, "rss")[0]
    base = sizes[0]
    lines = [
        f"# How the cost grows with the data ({meta['date']})",
        "",
        f"Machine: {meta['machine']}. Made by `bench/scale.sh`: backup-job and restore-job, both zstd, at "
        f"{len(sizes)} sizes of the same kind of data (each size made, measured, then dropped before the next); "
        "each round a backup then the restore of that backup. Input is the database as an uncompressed custom dump "
        "(`pg_dump -Fc -Z0`) plus the uploads. Peak RSS is GNU time's maximum resident set size of the job and its "
        "children (pg_dump, pg_restore; not the PostgreSQL server). Growth is against the smallest size: time per "
        "GB, and peak RSS.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
        "",
        "| size | parameters | database GB on disk | input GB | case | median s | min–max s | s per GB | "
        "time per GB, growth | peak RSS MB | peak RSS, growth |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in sizes:
        d = size["description"]
        for case in CASES:
            median, low, high = stat(size, case)
            # The size's own figures on its first row only.
            first = case == CASES[0]
            parameters = f"{d['parameters']}; {d['runs']} rounds" if first else ""
            database = f"{d['database_size'] / 1e9:.2f}" if first else ""
            lines.append(
                f"| {d['factor']}x | {parameters} | {database} | "
                f"{gigabytes(size):.2f} | {case} | {median:.2f} | {low:.2f}–{high:.2f} | {per_gb(size, case):.2f} | "
                f"{per_gb(size, case) / per_gb(base, case):.2f} | {rss(size, case) / 2**20:.0f} | "
                f"{rss(size, case) / rss(base, case):.2f} |")
    time_growth = {case: [per_gb(s, case) / per_gb(base, case) for s in sizes[1:]] for case in CASES}
    memory_growth = {case: [rss(s, case) / rss(base, case) for s in sizes[1:]] for case in CASES}
    linear = all(g <= LINEAR for values in time_growth.values() for g in values)
    flat = all(abs(g - 1) <= FLAT for values in memory_growth.values() for g in values)
    factors = " and ".join(f"{s['description']['factor']}x" for s in sizes[1:])
    show = lambda growth: "; ".join(f"{case}: " + ", ".join(f"{g:.2f}" for g in values)
                                    for case, values in growth.items())
    lines += [
        "",
        "## Verdicts",
        "",
        "| claim | measured (at " + factors + ", over " + f"{base['description']['factor']}x) | holds |",
        "|---|---|---|",
        f"| time grows at most linearly: time per GB within {LINEAR:.2f}x of the smallest size's | "
        f"{show(time_growth)} | {'yes' if linear else '**no**'} |",
        f"| memory stays flat: peak RSS within {FLAT * 100:.0f}% of the smallest size's | {show(memory_growth)} | "
        f"{'yes' if flat else '**no**'} |",
        "",
        "![chart](scaling.png)",
        "",
    ]
    if any("steps" in run for size in sizes for run in size["results"]["restore-job zstd"]["runs"]):
        lines += restore_steps(sizes)
    open(f"{out}/scaling.md", "w").write("\n".join(lines))
    print("\n".join(lines))
    chart(meta, sizes, stat, gigabytes, per_gb, rss, out)


def restore_steps(sizes):
    """The restore's steps at each size, from restore-job's own lines (raw files made before they were recorded
    have none)."""
    lines = [
        "## The restore's steps at each size",
        "",
        "restore-job's own lines (\"Restored the data of …\", \"Restored the indexes of …\"): when each step of the "
        "restore into the new database finished, in seconds from its start, median over the rounds. The steps run "
        "side by side; the last to finish is the critical path.",
    ]
    for size in sizes:
        runs = size["results"]["restore-job zstd"]["runs"]
        finished = {}
        for run in runs:
            for step, seconds in run.get("steps", {}).items():
                finished.setdefault(step, []).append(seconds)
        lines += ["", f"{size['description']['factor']}x:", ""]
        if not finished:
            lines.append("(no step lines recorded)")
            continue
        lines += ["| step | finished at, median s | min–max s | rounds |", "|---|---|---|---|"]
        for step, values in sorted(finished.items(), key=lambda item: statistics.median(item[1])):
            lines.append(f"| {step} | {statistics.median(values):.1f} | {min(values):.1f}–{max(values):.1f} | "
                         f"{len(values)} |")
    return lines + [""]


def chart(meta, sizes, stat, gigabytes, per_gb, rss, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(12, 5))
    x = [gigabytes(s) for s in sizes]
    for case, colour in zip(CASES, ["#2b6cb0", "#68a063"]):
        medians = [per_gb(s, case) for s in sizes]
        low = [m - stat(s, case)[1] / gigabytes(s) for s, m in zip(sizes, medians)]
        high = [stat(s, case)[2] / gigabytes(s) - m for s, m in zip(sizes, medians)]
        axes[0].errorbar(x, medians, yerr=[low, high], marker="o", capsize=3, color=colour, label=case)
        axes[1].plot(x, [rss(s, case) / 2**20 for s in sizes], marker="o", color=colour, label=case)
    axes[0].set_title("Time per GB of input (median, min–max)")
    axes[0].set_ylabel("seconds per GB")
    axes[1].set_title("Peak RSS (median)")
    axes[1].set_ylabel("MB")
    for axis in axes:
        axis.set_xlabel("input, GB (uncompressed dump + uploads)")
        axis.set_ylim(0, axis.get_ylim()[1] * 1.15)
        axis.set_xticks(x, [f"{g:.3g}\n({s['description']['factor']}x)" for g, s in zip(x, sizes)])
        axis.legend()
    figure.suptitle(f"Contingency's cost against the data's size, {meta['machine'].split(' (')[0]}")
    figure.tight_layout()
    figure.savefig(f"{out}/scaling.png", dpi=110)


def main():
    if sys.argv[1:2] == ["report"]:
        report(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["measure"])
    for name in ["work", "bin", "pg-bin", "db", "uploads", "parameters", "raw"]:
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--factor", type=int, required=True)
    parser.add_argument("--runs", type=int, default=3)
    ScaleBench(parser.parse_args()).run()


if __name__ == "__main__":
    main()
