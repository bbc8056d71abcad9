#!/usr/bin/env python3
"""Turns the benchmark's raw measurements (speed.raw, JSON) into bench/results/speed.md and speed.png.
   report.py bench/results/speed.raw bench/results
"""
import json
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

raw_path, out = sys.argv[1], sys.argv[2]
raw = json.load(open(raw_path))
meta, results, input_bytes = raw["meta"], raw["results"], raw["input_bytes"]


def stat(case, field="wall"):
    values = [run[field] for run in results[case]["runs"] if field in run]
    return (statistics.median(values), min(values), max(values)) if values else (None, None, None)


def mb(value):
    return f"{value / 1e6:,.0f}" if value is not None else ""


shell_backup = stat("shell procedure backup")[0]
shell_restore = stat("shell procedure restore")[0]


def per_round(case, base, field="wall"):
    """The median over rounds of (this case / `base` in the same round): steadier than the ratio of medians
    when the machine's load drifts during the invocation."""
    base_by_round = {run["round"]: run[field] for run in results[base]["runs"] if field in run}
    ratios = [run[field] / base_by_round[run["round"]] for run in results[case]["runs"]
              if run["round"] in base_by_round and field in run]
    return statistics.median(ratios) if ratios else None


def rows(group, baseline):
    shell = "shell procedure restore" if group.startswith("restore") else "shell procedure backup"
    lines = ["| case | median s | min–max s | CPU s | MB/s of input | peak RSS MB | output MB | ratio to shell | same-round ratio |",
             "|---|---|---|---|---|---|---|---|---|"]
    # The shell procedure first, then in the order they ran.
    for case, data in sorted(results.items(), key=lambda item: not item[0].startswith("shell")):
        if data["group"] != group:
            continue
        median, low, high = stat(case)
        rss = stat(case, "rss")[0]
        output = stat(case, "output")[0]
        cpu = stat(case, "cpu")[0]
        lines.append(f"| {case.replace('|', '&#124;')} | {median:.2f} | {low:.2f}–{high:.2f} | "
                     f"{'' if cpu is None else f'{cpu:.1f}'} | {input_bytes / 1e6 / median:,.0f} | "
                     f"{rss / 2**20:.0f} | {mb(output)} | {median / baseline:.2f}x | {per_round(case, shell):.2f}x |")
    return lines


def phases(case, names):
    parts = []
    for name in names:
        median = stat(case, name)[0]
        if median is not None:
            parts.append(f"{name} {median:.1f} s")
    return ", ".join(parts)


large, small = meta["large"], meta["small"]
lines = [
    f"# Speed against the runbook's shell procedure ({meta['date']})",
    "",
    f"Machine: {meta['machine']}. Each case ran {meta['runs']} times, alternating with the others (one round runs "
    "every case once); the figures are the median and the range. Ratios are against the shell procedure's median "
    "in this same invocation. Peak RSS is GNU time's maximum resident set size of the process and its children "
    "(not the PostgreSQL server); CPU s is its user and system time, the server's again not included. "
    "\"MB/s of input\" is the data carried (the database as an uncompressed custom "
    "dump plus the uploads) divided by the wall time.",
    "",
    f"Parameters: {meta['parameters']}.",
    f"Data: database {large['database_size'] / 1e9:.2f} GB on disk ({large['dump_bytes'] / 1e9:.2f} GB as "
    f"`pg_dump -Fc -Z0`), uploads {large['uploads_bytes'] / 1e9:.2f} GB in {large['uploads_files']:,} files; "
    f"{input_bytes / 1e9:.2f} GB of input in all.",
    "",
    "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
    "",
    "## Backups",
    "",
    *rows("backup", shell_backup),
    "",
    "## Restores",
    "",
    *rows("restore", shell_restore),
    "",
    "restore-job keeps the database it replaced until the next backup drops it (RESTORE_KEEP_OLD, its default); "
    f"the benchmark drops it after each restore-job, timed apart: {stat('drop of the replaced database')[0]:.1f} s "
    "(median; DROP DATABASE forces a checkpoint, which flushes the restored data to disk).",
    "",
    "## Floors (ratio to the shell backup)",
    "",
    *rows("floor", shell_backup),
    "",
    "## Restore floors (ratio to the shell restore)",
    "",
    *rows("restore floor", shell_restore),
    "",
    "`pg_restore -j2` of the whole dump file is the floor of a restore that stages the dump first and restores it "
    "after; restore-job does both at once, so it can go below it.",
    "",
    "Where the jobs' time goes (medians of their own log lines). restore-job's phases overlap: the restore into "
    "the new database starts as soon as globals.sql is read and matches the manifest and follows database.dump as "
    "it is staged (the schema once its table of contents is on disk, each table once its data is), while the rest "
    "of the archive is still read and verified; what follows them (the swap, the files) takes well under a second.",
    "",
]
for case in results:
    text = phases(case, ["dump", "archive", "verify", "pg_restore"])
    if text and results[case]["group"] in ("backup", "restore"):
        lines.append(f"- {case}: {text} (of {stat(case)[0]:.1f} s)")

rss_lines = ["", "## backup-job's peak RSS at two sizes", "",
             f"Small data: database {small['database_size'] / 1e9:.2f} GB on disk ({small['dump_bytes'] / 1e9:.2f} GB "
             f"dump), uploads {small['uploads_bytes'] / 1e9:.2f} GB; large: the data above "
             f"({(large['dump_bytes'] + large['uploads_bytes']) / (small['dump_bytes'] + small['uploads_bytes']):.1f}x).",
             "", "| case | small MB | large MB | large / small |", "|---|---|---|---|"]
flat = {}
for case in ["backup-job gzip", "backup-job zstd"]:
    s, l = stat(f"{case} (small)", "rss")[0], stat(case, "rss")[0]
    flat[case] = l / s
    rss_lines.append(f"| {case} | {s / 2**20:.0f} | {l / 2**20:.0f} | {l / s:.2f} |")
lines += rss_lines

ratio = lambda case, base: stat(case)[0] / base
both = lambda case, base, shell: f"{ratio(case, base):.2f}x ({per_round(case, shell):.2f}x)"
# age's cost is judged within each round, where backup-job gzip and gzip + age run one right after the other:
# the ratio of medians mixes rounds run under different loads.
age = per_round("backup-job gzip + age", "backup-job gzip")
age_of_medians = stat("backup-job gzip + age")[0] / stat("backup-job gzip")[0]
age_cpu = per_round("backup-job gzip + age", "backup-job gzip", "cpu")
max_rss = max(stat(c, "rss")[0] for c in ["backup-job gzip", "backup-job zstd", "backup-job gzip + age"])
restores = ["restore-job gzip", "restore-job zstd"]
targets = [
    ("backup-job zstd ≤ 0.15x the shell backup", both("backup-job zstd", shell_backup, "shell procedure backup"),
     ratio("backup-job zstd", shell_backup) <= 0.15),
    ("backup-job gzip ≤ 0.4x the shell backup", both("backup-job gzip", shell_backup, "shell procedure backup"),
     ratio("backup-job gzip", shell_backup) <= 0.4),
    ("restore-job ≤ 0.5x the shell restore (gzip / zstd)",
     " / ".join(both(c, shell_restore, "shell procedure restore") for c in restores),
     all(ratio(c, shell_restore) <= 0.5 for c in restores)),
    ("restore-job gzip + age ≤ 0.5x the shell restore",
     both("restore-job gzip + age", shell_restore, "shell procedure restore"),
     ratio("restore-job gzip + age", shell_restore) <= 0.5),
    ("backup-job peak RSS < 100 MB", f"{max_rss / 2**20:.0f} MB", max_rss < 100 * 2**20),
    ("backup-job peak RSS flat within 20% across sizes", " / ".join(f"{v:.2f}" for v in flat.values()),
     all(abs(v - 1) <= 0.2 for v in flat.values())),
    ("age adds ≤ 10% to the backup (gzip), within a round",
     f"{(age - 1) * 100:+.1f}% (of the medians: {(age_of_medians - 1) * 100:+.1f}%"
     + (f"; CPU time: {(age_cpu - 1) * 100:+.1f}%)" if age_cpu else ")"), age <= 1.10),
]
lines += ["", "## Targets", "", "Ratios: of the medians (in brackets: the median of the same-round ratios).", "",
          "| target | measured | met |", "|---|---|---|"]
lines += [f"| {t} | {m} | {'yes' if ok else '**no**'} |" for t, m, ok in targets]
lines += ["", "![chart](speed.png)", ""]
open(f"{out}/speed.md", "w").write("\n".join(lines))
print("\n".join(lines))

# The chart: median wall time with min–max bars, backups and floors on the left, restores on the right.
figure, axes = plt.subplots(1, 2, figsize=(13, 6.5), gridspec_kw={"width_ratios": [3, 2]})
colours = {"shell": "#b0b0b0", "backup-job": "#2b6cb0", "restore-job": "#2b6cb0", "restic": "#d69e2e", "floor": "#68a063"}
for axis, groups, title in [(axes[0], ["backup", "floor"], "Backup (and floors)"), (axes[1], ["restore", "restore floor"], "Restore (and floors)")]:
    cases = sorted((c for c in results if results[c]["group"] in groups), key=lambda c: not c.startswith("shell"))
    medians = [stat(c)[0] for c in cases]
    low = [m - stat(c)[1] for c, m in zip(cases, medians)]
    high = [stat(c)[2] - m for c, m in zip(cases, medians)]
    colour = [next(v for k, v in colours.items() if c.startswith(k)) for c in cases]
    positions = list(range(len(cases)))[::-1]
    axis.barh(positions, medians, xerr=[low, high], color=colour, capsize=3)
    axis.set_yticks(positions, cases)
    base = shell_backup if groups[0] == "backup" else shell_restore
    for position, median, case in zip(positions, medians, cases):
        # After the bar's range, so that the label never covers it.
        axis.text(stat(case)[2], position, f"  {median:.1f} s ({median / base:.2f}x)", va="center", fontsize=8)
    axis.set_xlabel("wall time, seconds (median, min–max)")
    axis.set_title(title)
    axis.set_xlim(0, max(stat(c)[2] for c in cases) * 1.4)
figure.suptitle(f"Contingency vs the runbook's shell procedure: {input_bytes / 1e9:.1f} GB of input, {meta['machine'].split(' (')[0]}")
figure.tight_layout()
figure.savefig(f"{out}/speed.png", dpi=110)
