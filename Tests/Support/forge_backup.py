#!/usr/bin/env python3
"""Forges a backup the way someone with write access to the store would: from a real backup, members replaced,
every checksum recomputed (the member's size and sha256 in metadata.json inside the archive and in the manifest,
the archive's size and sha256 in the manifest), optionally under another name, with the manifest's signature
kept, removed, or replaced by one made with another Ed25519 key (openssl pkeyutl).

usage: forge_backup.py ARCHIVE OUTPUT_ARCHIVE [--replace MEMBER=FILE]... [--signature keep|remove|resign:KEY.pem]

Plain (unencrypted) gzip or zstd archives; OUTPUT_ARCHIVE's manifest is OUTPUT_ARCHIVE.json.
"""
import argparse, base64, hashlib, io, json, os, subprocess, sys, tarfile, tempfile

def sha256(data):
    return hashlib.sha256(data).hexdigest()

def block_hashes(data, block_size):
    return [sha256(data[i:i + block_size]) for i in range(0, len(data), block_size)]

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("archive")
    parser.add_argument("output")
    parser.add_argument("--replace", action="append", default=[])
    parser.add_argument("--signature", default="keep")
    args = parser.parse_args()
    replacements = {}
    for item in args.replace:
        member, path = item.split("=", 1)
        with open(path, "rb") as f:
            replacements[member] = f.read()
    with open(args.archive + ".json") as f:
        manifest = json.load(f)

    zstd = args.archive.endswith(".zst")
    raw = open(args.archive, "rb").read()
    if zstd:
        raw = subprocess.run(["zstd", "-dc"], input=raw, capture_output=True, check=True).stdout
    source = tarfile.open(fileobj=io.BytesIO(raw), mode="r:*")
    old_stem = os.path.basename(args.archive).split(".tar")[0]
    new_stem = os.path.basename(args.output).split(".tar")[0]
    members = []
    for info in source.getmembers():
        data = source.extractfile(info).read() if info.isfile() else None
        parts = info.name.split("/", 1)
        relative = parts[1] if len(parts) > 1 else ""
        info.name = new_stem + ("/" + relative if relative else "")
        if relative in replacements:
            data = replacements[relative]
            info.size = len(data)
        members.append((relative, info, data))

    def fix(metadata):
        for member in metadata.get("members", []):
            for relative, info, data in members:
                if relative == member["name"] and data is not None:
                    member["size"] = len(data)
                    member["sha256"] = sha256(data)
                    if member.get("blocks"):
                        member["blocks"]["sha256"] = block_hashes(data, member["blocks"]["block_size"])
        metadata["timestamp"] = new_stem[-19:]
    inner = None
    for relative, info, data in members:
        if relative == "metadata.json":
            inner = json.loads(data)
    if inner is not None:
        fix(inner)
        encoded = json.dumps(inner, indent=2, sort_keys=True).encode()
        members = [(r, i, encoded if r == "metadata.json" else d) for r, i, d in members]
        for r, i, d in members:
            if r == "metadata.json":
                i.size = len(encoded)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:") as target:
        for relative, info, data in members:
            target.addfile(info, io.BytesIO(data) if data is not None else None)
    tar = out.getvalue()
    if zstd:
        stored = subprocess.run(["zstd", "-q", "-c"], input=tar, capture_output=True, check=True).stdout
    else:
        import gzip
        stored = gzip.compress(tar)
    with open(args.output, "wb") as f:
        f.write(stored)

    fix(manifest)
    manifest["archive"]["name"] = os.path.basename(args.output)
    manifest["archive"]["size"] = len(stored)
    manifest["archive"]["sha256"] = sha256(stored)
    mode = args.signature
    if mode == "remove":
        manifest.pop("signature", None)
    elif mode.startswith("resign:"):
        key = mode.split(":", 1)[1]
        signed_fields = {k: v for k, v in manifest.items() if k not in ("archive", "verified", "complete", "backup_size", "signature")}
        document = json.dumps({"format": "contingency-signed-manifest/1", "metadata": signed_fields, "archive": manifest["archive"]},
                              sort_keys=True, separators=(",", ":")).encode()
        message = b"contingency-manifest-signature/1\n" + document
        with tempfile.NamedTemporaryFile() as m, tempfile.NamedTemporaryFile() as s:
            m.write(message); m.flush()
            subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", key, "-rawin", "-in", m.name, "-out", s.name], check=True)
            signature = open(s.name, "rb").read()
        old = manifest.get("signature", {})
        manifest["signature"] = {"algorithm": "ed25519", "key_id": old.get("key_id", "0" * 16),
                                 "signed": base64.b64encode(document).decode(), "value": base64.b64encode(signature).decode()}
    with open(args.output + ".json", "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)

if __name__ == "__main__":
    main()
