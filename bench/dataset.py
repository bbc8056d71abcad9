#!/usr/bin/env python3
"""The benchmark's data, the same bytes for the same seed and sizes.

Database (through psql, libpq's PG* variables): besides pgbench's tables (made by run.sh with `pgbench -i`),
whose rows are padding that compresses 30x, three tables of the kind a web application keeps:
  articles      text: titles and bodies drawn from a Zipf-weighted vocabulary, tags as text[]
  events        jsonb: nested documents with ids, user agents, addresses, numbers, timestamps
  attachments   bytea: half random bytes (images), half text-like (documents)
Uploads: files of many sizes (1 KB to 32 MB, log-uniform) in year/month folders, half random bytes
(photos, archives), half text, JSON and CSV.

  dataset.py database --megabytes 750 --seed 1 --dbname visual_db
  dataset.py uploads  --megabytes 1000 --seed 1 --directory /app/uploads
"""
import argparse
import json
import math
import os
import random
import subprocess

SYLLABLES = ["ka", "to", "ri", "men", "sa", "lo", "ver", "an", "te", "pro", "di", "ul", "mar", "ne", "co", "ste",
             "ba", "in", "or", "que", "li", "tra", "po", "es", "gen", "da", "mi", "ter", "on", "fa", "ly", "sion"]


class Text:
    """Pseudo-English: a vocabulary of 30,000 words weighted by Zipf's law, so it compresses like prose (about
    3x with gzip), and a pool of sentences drawn from it."""

    def __init__(self, rng):
        self.rng = rng
        words = set()
        while len(words) < 30000:
            words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.choice([1, 1, 2, 2, 2, 3, 3, 4]))))
        self.words = sorted(words)
        rng.shuffle(self.words)
        weights = [1.0 / (rank + 1) for rank in range(len(self.words))]
        total = 0.0
        self.cumulative = []
        for weight in weights:
            total += weight
            self.cumulative.append(total)
        self.sentences = [self.sentence() for _ in range(100000)]

    def sentence(self):
        words = self.rng.choices(self.words, cum_weights=self.cumulative, k=self.rng.randint(5, 22))
        words[0] = words[0].capitalize()
        return " ".join(words) + self.rng.choice([".", ".", ".", "?", "!", ","])

    def paragraph(self, length):
        parts, size = [], 0
        while size < length:
            part = self.rng.choice(self.sentences)
            parts.append(part)
            size += len(part) + 1
        return " ".join(parts)[:length]


def copy_escape(value):
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def copy_into(dbname, table, rows):
    """Streams rows (already formatted COPY text lines) into `table` with psql's \\copy."""
    process = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dbname, "-c",
                                f"\\copy {table} FROM STDIN"], stdin=subprocess.PIPE)
    try:
        for line in rows:
            process.stdin.write(line.encode())
    finally:
        process.stdin.close()
    if process.wait() != 0:
        raise SystemExit(f"psql \\copy {table} failed")


def database(arguments):
    rng = random.Random(arguments.seed)
    text = Text(rng)
    budget = arguments.megabytes * 1_000_000
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", arguments.dbname, "-c", """
        DROP TABLE IF EXISTS articles, events, attachments;
        CREATE TABLE articles (id bigint PRIMARY KEY, author text NOT NULL, title text NOT NULL, body text NOT NULL,
                               tags text[] NOT NULL, published timestamptz NOT NULL);
        CREATE TABLE events (id bigint PRIMARY KEY, kind text NOT NULL, payload jsonb NOT NULL,
                             created timestamptz NOT NULL);
        CREATE TABLE attachments (id bigint PRIMARY KEY, article_id bigint NOT NULL, name text NOT NULL,
                                  mime text NOT NULL, data bytea NOT NULL);
        CREATE INDEX ON events (kind, created);
        CREATE INDEX ON attachments (article_id);
    """], check=True)
    authors = [f"{rng.choice(text.words)}.{rng.choice(text.words)}@example.org" for _ in range(2000)]

    def articles(limit):
        size, number = 0, 0
        while size < limit:
            number += 1
            body = text.paragraph(int(rng.lognormvariate(8.0, 0.8)))
            tags = "{" + ",".join(rng.sample(text.words[:300], rng.randint(1, 5))) + "}"
            line = "\t".join([str(number), rng.choice(authors), copy_escape(text.sentence()), copy_escape(body), tags,
                              f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00+00"]) + "\n"
            size += len(line)
            yield line

    agents = [f"Mozilla/5.0 ({rng.choice(['X11; Linux x86_64', 'Windows NT 10.0; Win64; x64', 'Macintosh; Intel Mac OS X 14_1', 'iPhone; CPU iPhone OS 17_0 like Mac OS X'])}) "
              f"AppleWebKit/537.36 (KHTML, like Gecko) {rng.choice(['Chrome', 'Firefox', 'Safari'])}/{rng.randint(90, 130)}.0.{rng.randint(1000, 6000)}.{rng.randint(10, 200)}"
              for _ in range(300)]
    kinds = ["page_view", "login", "logout", "upload", "comment", "purchase", "search", "error"]

    def events(limit):
        size, number = 0, 0
        while size < limit:
            number += 1
            kind = rng.choice(kinds)
            payload = {
                "user": {"id": rng.randint(1, 200000), "email": rng.choice(authors), "roles": rng.sample(["admin", "editor", "viewer", "billing"], rng.randint(1, 2))},
                "request": {"ip": f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                            "agent": rng.choice(agents), "path": "/" + "/".join(rng.choices(text.words[:2000], k=rng.randint(1, 4))),
                            "duration_ms": round(rng.expovariate(1 / 120), 2)},
                "kind": kind,
                "details": {word: rng.randint(0, 10 ** rng.randint(1, 9)) for word in rng.sample(text.words[:500], rng.randint(1, 6))},
            }
            if kind in ("comment", "search", "error"):
                payload["text"] = text.paragraph(rng.randint(40, 600))
            line = "\t".join([str(number), kind, copy_escape(json.dumps(payload)),
                              f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}+00"]) + "\n"
            size += len(line)
            yield line

    def attachments(limit):
        size, number = 0, 0
        while size < limit:
            number += 1
            length = int(math.exp(rng.uniform(math.log(2000), math.log(200000))))
            if number % 2:
                name, mime, data = f"image-{number}.jpg", "image/jpeg", rng.randbytes(length)
            else:
                name, mime, data = f"note-{number}.txt", "text/plain", text.paragraph(length).encode()
            line = "\t".join([str(number), str(rng.randint(1, 100000)), name, mime, "\\\\x" + data.hex()]) + "\n"
            size += length
            yield line

    copy_into(arguments.dbname, "articles", articles(budget * 0.40))
    copy_into(arguments.dbname, "events", events(budget * 0.35))
    copy_into(arguments.dbname, "attachments", attachments(budget * 0.25))
    subprocess.run(["psql", "-X", "-q", "-d", arguments.dbname, "-c", "VACUUM ANALYZE"], check=True)


def uploads(arguments):
    rng = random.Random(arguments.seed + 1000)
    text = Text(rng)
    budget = arguments.megabytes * 1_000_000
    size, number = 0, 0
    os.makedirs(arguments.directory, exist_ok=True)
    while size < budget:
        number += 1
        length = min(int(math.exp(rng.uniform(math.log(1000), math.log(32_000_000)))), budget - size)
        folder = os.path.join(arguments.directory, f"{rng.randint(2019, 2025)}", f"{rng.randint(1, 12):02d}")
        os.makedirs(folder, exist_ok=True)
        kind = rng.random()
        if kind < 0.5:
            path = os.path.join(folder, f"{number:06d}.{rng.choice(['jpg', 'png', 'pdf', 'zip', 'mp4'])}")
            data = rng.randbytes(length)
        elif kind < 0.75:
            path = os.path.join(folder, f"{number:06d}.txt")
            data = text.paragraph(length).encode()
        elif kind < 0.9:
            path = os.path.join(folder, f"{number:06d}.json")
            records, total = [], 0
            while total < length:
                record = json.dumps({"id": len(records), "name": text.sentence(), "value": rng.random(),
                                     "tags": rng.sample(text.words[:200], 3)})
                records.append(record)
                total += len(record) + 2
            data = ("[" + ",\n".join(records) + "]").encode()[:length]
        else:
            path = os.path.join(folder, f"{number:06d}.csv")
            lines, total = ["id,date,amount,customer,note"], 0
            while total < length:
                line = f"{len(lines)},2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},{rng.randint(1, 99999) / 100},{rng.randint(1, 50000)},{text.sentence()}"
                lines.append(line)
                total += len(line) + 1
            data = "\n".join(lines).encode()[:length]
        with open(path, "wb") as handle:
            handle.write(data)
        size += len(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    db = commands.add_parser("database")
    db.add_argument("--megabytes", type=int, required=True)
    db.add_argument("--seed", type=int, default=1)
    db.add_argument("--dbname", required=True)
    up = commands.add_parser("uploads")
    up.add_argument("--megabytes", type=int, required=True)
    up.add_argument("--seed", type=int, default=1)
    up.add_argument("--directory", required=True)
    arguments = parser.parse_args()
    {"database": database, "uploads": uploads}[arguments.command](arguments)


if __name__ == "__main__":
    main()
