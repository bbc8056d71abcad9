import Foundation

/// Rewrites a real backup the way an attacker with write access to the store would: members removed, added or
/// changed, then every checksum recomputed (each member's size and sha256 in metadata.json inside the archive and
/// in the manifest `<archive>.json`, the uploads' aggregate digest, the archive's own size and sha256 in the
/// manifest), so that only the content is hostile. `recompute` leaves some out, to test one check at a time.
///
/// The rewriting is done by Python's `tarfile` (any header an attacker can write: links, owners, modes, `..`), the
/// archive rewritten as one gzip stream. Paths are relative to the archive's top folder (`uploads/a.png`,
/// `database.dump`); with `nested`, the edits apply to the runbook layout's `uploads.tar.gz` instead (paths as
/// in it: `uploads/a.png`), and nothing is recomputed (such archives have no manifest).
public enum ArchiveForge {
    /// One tar entry to write.
    public struct Entry: Sendable {
        public enum Kind: String, Sendable { case file, directory, symlink, hardlink }
        public var path: String
        public var kind: Kind
        public var link: String?
        public var mode: Int?
        public var uid: Int?
        public var gid: Int?
        /// Content of a file: `fillCount` bytes `fillByte`, then `data` (so gigabytes cost no memory).
        public var data = Data()
        public var fillCount: Int64 = 0
        public var fillByte: UInt8 = 0

        public static func file(_ path: String, _ data: Data, mode: Int = 0o644) -> Entry {
            Entry(path: path, kind: .file, mode: mode, data: data)
        }

        /// A file of `count` zero bytes: a few MB of gzip for gigabytes.
        public static func zeros(_ path: String, count: Int64) -> Entry {
            Entry(path: path, kind: .file, mode: 0o644, fillCount: count)
        }

        public static func directory(_ path: String, mode: Int = 0o755) -> Entry { Entry(path: path, kind: .directory, mode: mode) }

        public static func symlink(_ path: String, to target: String) -> Entry {
            Entry(path: path, kind: .symlink, link: target, mode: 0o777)
        }

        /// `target` is another entry's path, relative to the top folder like `path`.
        public static func hardlink(_ path: String, to target: String) -> Entry {
            Entry(path: path, kind: .hardlink, link: target, mode: 0o644)
        }

        /// A hard link entry that carries data of its own (pax allows it; libarchive writes it into the linked
        /// file): `data`, its size in the header.
        public static func hardlink(_ path: String, to target: String, carrying data: Data) -> Entry {
            Entry(path: path, kind: .hardlink, link: target, mode: 0o644, data: data)
        }

        var json: [String: Any] {
            var object: [String: Any] = ["path": path, "kind": kind.rawValue, "data": data.base64EncodedString(), "fill": fillCount, "byte": Int(fillByte)]
            if let link { object["link"] = link }
            if let mode { object["mode"] = mode }
            if let uid { object["uid"] = uid }
            if let gid { object["gid"] = gid }
            return object
        }
    }

    /// One change to the archive's list of entries, applied in order.
    public enum Edit: Sendable {
        /// Removes the entry at this path.
        case remove(String)
        /// Removes every entry below this folder (the folder's own entry stays).
        case removeBelow(String)
        /// Puts `entry` where the entry at this path was.
        case replace(String, Entry)
        /// Puts `entry` right after the entry at this path (after the last entry below it, for a folder).
        case insertAfter(String, Entry)
        /// Changes the header of the entry at this path.
        case modify(String, mode: Int? = nil, uid: Int? = nil, gid: Int? = nil)

        var json: [String: Any] {
            switch self {
            case .remove(let path): ["op": "remove", "path": path]
            case .removeBelow(let path): ["op": "removeBelow", "path": path]
            case .replace(let path, let entry): ["op": "replace", "path": path, "entry": entry.json]
            case .insertAfter(let path, let entry): ["op": "insertAfter", "path": path, "entry": entry.json]
            case .modify(let path, let mode, let uid, let gid):
                ["op": "modify", "path": path, "mode": mode as Any? ?? NSNull(), "uid": uid as Any? ?? NSNull(), "gid": gid as Any? ?? NSNull()]
            }
        }
    }

    /// Which checksums are brought in line with the forged content.
    public struct Recompute: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        /// Each member's size and sha256, in metadata.json and in the manifest.
        public static let members = Recompute(rawValue: 1)
        /// The uploads' aggregate (files, folders, bytes, sha256), in both.
        public static let uploads = Recompute(rawValue: 2)
        /// The archive's size and sha256 in the manifest.
        public static let archive = Recompute(rawValue: 4)
        public static let all: Recompute = [.members, .uploads, .archive]
    }

    /// Rewrites `archive` (a `.tar.gz`) and its manifest beside it (when there is one) in place.
    public static func forge(_ archive: URL, _ edits: [Edit], recompute: Recompute = .all, nested: Bool = false) async throws {
        let folder = try TemporaryDirectory(prefix: "contingency-forge")
        defer { folder.remove() }
        let spec: [String: Any] = [
            "archive": archive.path, "edits": edits.map(\.json), "nested": nested,
            "members": recompute.contains(.members), "uploads": recompute.contains(.uploads), "sum": recompute.contains(.archive),
        ]
        let specFile = folder.appending("spec.json")
        let scriptFile = folder.appending("forge.py")
        try JSONSerialization.data(withJSONObject: spec).write(to: specFile)
        try Data(script.utf8).write(to: scriptFile)
        let result = try await ProcessRunner.run("python3", [scriptFile.path, specFile.path], timeout: .seconds(600))
        guard result.succeeded else { throw TestSupportError("forging \(archive.lastPathComponent) failed: \(result)") }
    }

    /// Sets keys of the manifest beside `archive` (top-level JSON keys; metadata keys sit there too).
    public static func patchManifest(_ archive: URL, _ change: (inout [String: Any]) -> Void) throws {
        let url = URL(fileURLWithPath: archive.path + ".json")
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any] ?? [:]
        change(&object)
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).write(to: url)
    }

    private static let script = #"""
        import base64, hashlib, io, json, os, sys, tarfile

        spec = json.load(open(sys.argv[1]))
        path = spec['archive']
        TOP_LEVEL = {'database.dump', '.env.backup', 'package.json', 'package-lock.json', 'metadata.json', 'uploads',
                     'uploads.tar.gz', 'globals.sql'}

        class Fill(io.RawIOBase):
            """count bytes of one value, then data: gigabytes without the memory."""
            def __init__(self, count, byte, data):
                self.left, self.chunk, self.data = count, bytes([byte]) * (1 << 20), data
            def readable(self): return True
            def read(self, n=-1):
                if self.left > 0:
                    k = min(n if n >= 0 else len(self.chunk), len(self.chunk), self.left)
                    self.left -= k
                    return self.chunk[:k]
                out, self.data = (self.data, b'') if n < 0 else (self.data[:n], self.data[n:])
                return out

        def content(item):
            """(size, reader factory) of an entry's content."""
            info, data = item
            if isinstance(data, dict):
                return data['fill'] + len(data['bytes']), lambda: Fill(data['fill'], data['byte'], data['bytes'])
            if data is None:
                return 0, None
            return len(data), lambda: io.BytesIO(data)

        def read(tar):
            items = []
            for m in tar.getmembers():
                items.append([m, tar.extractfile(m).read() if m.isfile() else None])
            return items

        def make(entry, full):
            info = tarfile.TarInfo(full(entry['path']))
            kind = entry['kind']
            info.type = {'file': tarfile.REGTYPE, 'directory': tarfile.DIRTYPE, 'symlink': tarfile.SYMTYPE,
                         'hardlink': tarfile.LNKTYPE}[kind]
            if kind == 'symlink': info.linkname = entry['link']
            if kind == 'hardlink': info.linkname = full(entry['link'])
            info.mode = entry.get('mode', 0o644)
            info.uid, info.gid = entry.get('uid', 0), entry.get('gid', 0)
            info.mtime = 1700000000
            data = None
            if kind == 'file' or (kind == 'hardlink' and (entry['fill'] or entry['data'])):
                data = {'fill': entry['fill'], 'byte': entry['byte'], 'bytes': base64.b64decode(entry['data'])}
                info.size = content([info, data])[0]
            return [info, data]

        def index(items, full, p):
            name = full(p)
            for i, (m, _) in enumerate(items):
                if m.name.rstrip('/') == name: return i
            raise SystemExit('no entry ' + name + ' in ' + ', '.join(m.name for m, _ in items))

        def apply(items, edits, full):
            for edit in edits:
                op, p = edit['op'], edit['path']
                if op == 'removeBelow':
                    prefix = full(p) + '/'
                    items[:] = [it for it in items if not it[0].name.startswith(prefix)]
                    continue
                i = index(items, full, p)
                if op == 'remove': del items[i]
                elif op == 'replace': items[i] = make(edit['entry'], full)
                elif op == 'insertAfter':
                    prefix = items[i][0].name.rstrip('/') + '/'
                    j = i + 1
                    while j < len(items) and items[j][0].name.startswith(prefix): j += 1
                    items.insert(j, make(edit['entry'], full))
                elif op == 'modify':
                    m = items[i][0]
                    if edit['mode'] is not None: m.mode = edit['mode']
                    if edit['uid'] is not None: m.uid, m.uname = edit['uid'], ''
                    if edit['gid'] is not None: m.gid, m.gname = edit['gid'], ''

        def write(items, target, mode):
            with tarfile.open(fileobj=target, mode=mode, format=tarfile.PAX_FORMAT) as out:
                for info, data in items:
                    size, reader = content([info, data])
                    if info.isfile() or (info.islnk() and data is not None): info.size = size
                    out.addfile(info, reader() if reader else None)

        def member_path(name):
            parts = [p for p in name.split('/') if p]
            while parts and parts[0] == '.': parts.pop(0)
            if parts and parts[0] not in TOP_LEVEL: parts.pop(0)
            return '/'.join(parts)

        def below_uploads(p):
            if p == 'uploads': return ''
            if p.startswith('uploads/'): return p[len('uploads/'):].lstrip('/')
            return None

        def raw(text): return text.encode('utf-8', 'surrogateescape')

        def sha256(item):
            size, reader = content(item)
            h = hashlib.sha256()
            if reader:
                r = reader()
                while True:
                    chunk = r.read(1 << 20)
                    if not chunk: break
                    h.update(chunk)
            return size, h.hexdigest()

        def uploads_summary(items):
            h = hashlib.sha256()
            files = directories = total = links = 0
            for item in items:
                m = item[0]
                rel = below_uploads(member_path(m.name))
                if rel is None: continue
                if m.isfile():
                    size, digest = sha256(item)
                    h.update(b'f ' + raw(rel) + b'\0' + str(size).encode() + b'\0' + digest.encode() + b'\n')
                    files += 1; total += size
                elif m.isdir():
                    if rel:
                        h.update(b'd ' + raw(rel) + b'\n'); directories += 1
                elif m.issym():
                    h.update(b'l ' + raw(rel) + b'\0' + raw(m.linkname) + b'\n'); links += 1
                elif m.islnk():
                    target = below_uploads(member_path(m.linkname)) or ''
                    h.update(b'h ' + raw(rel) + b'\0' + raw(target) + b'\n'); links += 1
            return {'files': files, 'directories': directories, 'bytes': total, 'sha256': h.hexdigest(), 'links': links}

        with tarfile.open(path, 'r:*') as tar:
            items = read(tar)
        top = items[0][0].name.split('/')[0]
        top_full = lambda p: top + '/' + p if p else top

        if spec['nested']:
            i = index(items, top_full, 'uploads.tar.gz')
            with tarfile.open(fileobj=io.BytesIO(items[i][1]), mode='r:*') as nested:
                inner = read(nested)
            apply(inner, spec['edits'], lambda p: p)
            buffer = io.BytesIO()
            write(inner, buffer, 'w:gz')
            items[i][1] = buffer.getvalue()
        else:
            apply(items, spec['edits'], top_full)

        manifest_path = path + '.json'
        manifest = json.load(open(manifest_path)) if os.path.exists(manifest_path) else None
        documents = [manifest] if manifest is not None else []
        meta_index = next((i for i, (m, _) in enumerate(items) if member_path(m.name) == 'metadata.json'), None)
        metadata = None
        if meta_index is not None and isinstance(items[meta_index][1], bytes):
            try:
                metadata = json.loads(items[meta_index][1])
                if 'format' in metadata: documents.append(metadata)
            except ValueError:
                metadata = None
        if not spec['nested'] and (spec['members'] or spec['uploads']):
            found = {member_path(m.name): item for item in items for m in [item[0]] if m.isfile()}
            summary = uploads_summary(items)
            for doc in documents:
                if spec['members']:
                    for member in doc.get('members', []):
                        if member['name'] in found:
                            member['size'], member['sha256'] = sha256(found[member['name']])
                if spec['uploads'] and doc.get('uploads') is not None:
                    doc['uploads'] = summary
            if metadata is not None and 'format' in metadata:
                text = json.dumps(metadata, indent=2, sort_keys=True).encode()
                items[meta_index][1] = text
                items[meta_index][0].size = len(text)

        with open(path + '.forged', 'wb') as target:
            write(items, target, 'w|gz')
        os.replace(path + '.forged', path)
        if manifest is not None:
            if spec['sum']:
                h = hashlib.sha256()
                with open(path, 'rb') as f:
                    for chunk in iter(lambda: f.read(1 << 20), b''): h.update(chunk)
                manifest['archive']['size'] = os.path.getsize(path)
                manifest['archive']['sha256'] = h.hexdigest()
            with open(manifest_path, 'w') as f:
                json.dump(manifest, f, indent=2, sort_keys=True)
        """#
}
