import Foundation

/// Forges a backup in a volume store the way an attacker with write access to the store would: members of a
/// real archive replaced, added or removed, metadata.json edited, then every checksum made to match again
/// (each member's size and sha256, and block hashes where recorded, in metadata.json and in the manifest, the
/// archive's size and sha256 in the manifest), so that only the content is hostile and every integrity check
/// passes.
///
/// Works on `.tar.gz` and `.tar.zst` archives, encrypted with age or not (an encrypted one is decrypted with
/// `identityFile` and encrypted again to `recipients`, as anyone holding the public recipient can). Keys of the
/// manifest it does not know (a signature) are left as they are. The tar work is done by python's tarfile,
/// which keeps every other entry (names that are not UTF-8, modes, times, links) as it was. A change below
/// `uploads/` recomputes the uploads' aggregate (`uploads` in metadata.json) the way restore-job computes it.
public enum BackupForger {
    /// One change to the archive. Member names are relative to the archive's top folder (`globals.sql`,
    /// `uploads/a.png`).
    public enum Change: Sendable {
        /// New content for an existing member (its entry keeps its place, mode and time).
        case replace(String, Data)
        /// A new regular file (mode 0600), written just before metadata.json.
        case add(String, Data)
        /// The member is left out.
        case remove(String)
        /// A top-level key of metadata.json (and of the manifest) set to a JSON value (`"null"`, `"[\"a\"]"`).
        case setMetadata(String, json: String)
    }

    /// Forges `archive` (a file in a store folder, its manifest `<archive>.json` beside it) in place.
    public static func forge(
        _ archive: URL, _ changes: [Change], identityFile: URL? = nil, recipients: [String] = []
    ) async throws {
        let work = try TemporaryDirectory(prefix: "forge")
        defer { work.remove() }
        var spec: [[String: String]] = []
        for (index, change) in changes.enumerated() {
            switch change {
            case .replace(let name, let data), .add(let name, let data):
                let file = work.url.appendingPathComponent("content-\(index)")
                try data.write(to: file)
                let kind = if case .replace = change { "replace" } else { "add" }
                spec.append(["kind": kind, "name": name, "file": file.path])
            case .remove(let name):
                spec.append(["kind": "remove", "name": name])
            case .setMetadata(let key, let json):
                spec.append(["kind": "metadata", "name": key, "json": json])
            }
        }
        let specFile = work.url.appendingPathComponent("changes.json")
        try JSONSerialization.data(withJSONObject: spec).write(to: specFile)
        let script = work.url.appendingPathComponent("forge.py")
        try Data(Self.script.utf8).write(to: script)
        var arguments = [
            script.path, archive.path, archive.path + ".json", specFile.path, work.path, identityFile?.path ?? "",
        ]
        arguments += recipients
        _ = try await ProcessRunner.run("python3", arguments, timeout: .seconds(300), requireSuccess: true)
    }

    /// The content of one member of `archive` (decrypted with `identityFile` when it ends in `.age`).
    public static func member(_ name: String, of archive: URL, identityFile: URL? = nil) async throws -> Data {
        let work = try TemporaryDirectory(prefix: "forge")
        defer { work.remove() }
        let output = work.url.appendingPathComponent("member")
        let script = """
            import io, subprocess, sys, tarfile
            archive, name, identity, output = sys.argv[1:5]
            stored = open(archive, 'rb').read()
            if archive.endswith('.age'):
                stored = subprocess.run(['age', '-d', '-i', identity], input=stored, check=True, capture_output=True).stdout
            if stored[:4] == b'\\x28\\xb5\\x2f\\xfd':
                stored = subprocess.run(['zstd', '-dcq'], input=stored, check=True, capture_output=True).stdout
            with tarfile.open(fileobj=io.BytesIO(stored), encoding='utf-8', errors='surrogateescape') as tar:
                for member in tar.getmembers():
                    if member.isfile() and member.name.split('/', 1)[-1] == name:
                        open(output, 'wb').write(tar.extractfile(member).read())
                        sys.exit(0)
            sys.exit('no member ' + name)
            """
        _ = try await ProcessRunner.run(
            "python3", ["-c", script, archive.path, name, identityFile?.path ?? "", output.path], requireSuccess: true)
        return try Data(contentsOf: output)
    }

    static let script = #"""
        import hashlib, io, json, os, subprocess, sys, tarfile

        archive, manifest_path, spec_path, work, identity = sys.argv[1:6]
        recipients = sys.argv[6:]
        changes = json.load(open(spec_path))

        stored = open(archive, 'rb').read()
        encrypted = archive.endswith('.age')
        if encrypted:
            stored = subprocess.run(['age', '-d', '-i', identity], input=stored, check=True, capture_output=True).stdout
        if stored[:2] == b'\x1f\x8b':
            compression = 'gz'
            source = tarfile.open(fileobj=io.BytesIO(stored), mode='r:gz', encoding='utf-8', errors='surrogateescape')
        elif stored[:4] == b'\x28\xb5\x2f\xfd':
            compression = 'zst'
            tar_bytes = subprocess.run(['zstd', '-dcq'], input=stored, check=True, capture_output=True).stdout
            source = tarfile.open(fileobj=io.BytesIO(tar_bytes), mode='r:', encoding='utf-8', errors='surrogateescape')
        else:
            sys.exit('not a gzip or zstd archive')

        def relative(name):
            parts = [p for p in name.split('/') if p not in ('', '.')]
            return '/'.join(parts[1:]), (parts[0] if parts else '')

        replaced = {c['name']: open(c['file'], 'rb').read() for c in changes if c['kind'] == 'replace'}
        added = [(c['name'], open(c['file'], 'rb').read()) for c in changes if c['kind'] == 'add']
        removed = {c['name'] for c in changes if c['kind'] == 'remove'}
        metadata_edits = [(c['name'], json.loads(c['json'])) for c in changes if c['kind'] == 'metadata']

        def below_uploads(name):
            # The path below the archive's uploads folder (as restore-job's verifier computes it), or None.
            parts = [p for p in name.split('/') if p not in ('', '.')]
            if len(parts) < 2 or parts[1] != 'uploads':
                return None
            return '/'.join(parts[2:]).encode('utf-8', 'surrogateescape')

        class UploadsDigest:
            # restore-job's UploadsDigest: one sha256 over every uploads entry in archive order.
            def __init__(self):
                self.hash, self.files, self.directories, self.bytes, self.links = hashlib.sha256(), 0, 0, 0, 0
            def add(self, member, data):
                path = below_uploads(member.name)
                if path is None:
                    return
                if member.isfile():
                    self.hash.update(b'f ' + path + b'\0' + ('%d\0%s' % (len(data), hashlib.sha256(data).hexdigest())).encode() + b'\n')
                    self.files += 1
                    self.bytes += len(data)
                elif member.isdir():
                    if path:
                        self.hash.update(b'd ' + path + b'\n')
                        self.directories += 1
                elif member.issym():
                    self.hash.update(b'l ' + path + b'\0' + member.linkname.encode('utf-8', 'surrogateescape') + b'\n')
                    self.links += 1
                elif member.islnk():
                    self.hash.update(b'h ' + path + b'\0' + (below_uploads(member.linkname) or b'') + b'\n')
                    self.links += 1
            def summary(self):
                return {'files': self.files, 'directories': self.directories, 'bytes': self.bytes, 'sha256': self.hash.hexdigest(),
                        'links': self.links}

        uploads = UploadsDigest()
        uploads_touched = any(c['name'] == 'uploads' or c['name'].startswith('uploads/') for c in changes if c['kind'] != 'metadata')

        out = io.BytesIO()
        target = tarfile.open(fileobj=out, mode='w:', format=source.format, encoding='utf-8', errors='surrogateescape')
        metadata_info, metadata, top = None, None, ''
        digests = {}
        for member in source.getmembers():
            name, top = relative(member.name)
            if name == 'metadata.json':
                metadata_info, metadata = member, json.loads(source.extractfile(member).read())
                continue
            if name in removed:
                continue
            if name in replaced:
                data = replaced.pop(name)
                member.size = len(data)
            else:
                data = source.extractfile(member).read() if member.isfile() else b''
            target.addfile(member, io.BytesIO(data) if member.isfile() else None)
            uploads.add(member, data)
            # An upload is no member of its own: the uploads' aggregate covers it.
            if name in [c['name'] for c in changes if c['kind'] == 'replace'] and below_uploads(member.name) is None:
                digests[name] = data
        if replaced:
            sys.exit('no such member to replace: ' + ', '.join(replaced))
        for name, data in added:
            info = tarfile.TarInfo(top + '/' + name)
            info.size, info.mode = len(data), 0o600
            info.mtime = metadata_info.mtime if metadata_info else 0
            target.addfile(info, io.BytesIO(data))
            uploads.add(info, data)
            if below_uploads(info.name) is None:
                digests[name] = data

        if metadata is not None:
            members = [m for m in metadata.get('members', []) if m['name'] not in removed]
            for name, data in digests.items():
                entry = {'name': name, 'size': len(data), 'sha256': hashlib.sha256(data).hexdigest()}
                for index, m in enumerate(members):
                    if m['name'] == name:
                        if m.get('blocks') is not None:
                            # BlockHashes: blocks of at least 1 MiB, doubled until there are at most 4096.
                            size = 1 << 20
                            while -(-len(data) // size) > 4096:
                                size *= 2
                            entry['blocks'] = {'block_size': size, 'sha256': [
                                hashlib.sha256(data[i:i + size]).hexdigest() for i in range(0, len(data), size)]}
                        members[index] = entry
                        break
                else:
                    members.append(entry)
            metadata['members'] = members
            if uploads_touched and metadata.get('uploads') is not None:
                metadata['uploads'] = uploads.summary()
            for key, value in metadata_edits:
                metadata[key] = value
            data = json.dumps(metadata, indent=2, sort_keys=True).encode()
            metadata_info.size = len(data)
            target.addfile(metadata_info, io.BytesIO(data))
        target.close()

        tar_bytes = out.getvalue()
        if compression == 'gz':
            import gzip
            result = gzip.compress(tar_bytes)
        else:
            result = subprocess.run(['zstd', '-cq'], input=tar_bytes, check=True, capture_output=True).stdout
        if encrypted:
            arguments = ['age']
            for recipient in recipients:
                arguments += ['-r', recipient]
            result = subprocess.run(arguments, input=result, check=True, capture_output=True).stdout

        temporary = archive + '.forging'
        open(temporary, 'wb').write(result)
        os.chmod(temporary, os.stat(archive).st_mode & 0o7777)
        os.rename(temporary, archive)

        manifest = json.load(open(manifest_path))
        if metadata is not None:
            for key, value in metadata.items():
                manifest[key] = value
        manifest['archive']['size'] = len(result)
        manifest['archive']['sha256'] = hashlib.sha256(result).hexdigest()
        manifest['backup_size'] = '%d B' % len(result)
        temporary = manifest_path + '.forging'
        open(temporary, 'w').write(json.dumps(manifest, indent=2, sort_keys=True))
        os.chmod(temporary, os.stat(manifest_path).st_mode & 0o7777)
        os.rename(temporary, manifest_path)
        """#
}
