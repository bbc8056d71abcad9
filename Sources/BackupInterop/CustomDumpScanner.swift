import BackupCore

/// Follows a pg_dump custom-format archive as its bytes go by, without keeping them: first its table of
/// contents, then where each data block ends. A restore uses it to start on each table as soon as that table's
/// data is on disk, while the rest of the dump is still arriving.
///
/// Neither libpq nor pg_restore exposes this (`pg_restore --list` prints no positions and needs the TOC
/// complete), so the layout is read here, from PostgreSQL's own description of it (pg_backup_archiver.c
/// `ReadHead`/`ReadToc`, pg_backup_custom.c `_ReadExtraToc`/`_readBlockHeader`): archive versions 1.12 to 1.16
/// (pg_dump 12 to 18). Whatever it does not recognise makes it stop with a `failure`, never a guess: the
/// caller then waits for the whole dump and lets pg_restore read it, as it would without this.
public final class CustomDumpScanner {
    /// One entry of the table of contents.
    public struct Entry: Sendable, Equatable {
        public let dumpId: Int
        public let desc: String
        public let tag: String
        /// pg_dump's section (1 none, 2 pre-data, 3 data, 4 post-data), with "none" (comments, ACLs) taking
        /// the section of the entry before it, as pg_restore does.
        public let section: Int
        /// Whether the entry has a data block in the archive.
        public let hasData: Bool
        /// Where that block starts, when the table of contents says (pg_dump wrote a file it could seek in, not
        /// a pipe).
        public let dataOffset: Int64?
        /// Whether the table of contents says where that block starts.
        public var dataOffsetKnown: Bool { dataOffset != nil }
        /// The entries this one depends on.
        public let dependencies: [Int]
        /// A TABLE DATA entry's `COPY … FROM stdin;` statement, as the dump gives it (nil for other entries, or
        /// when it is not valid UTF-8 and so could not be passed on unchanged).
        public let copyStatement: String?
        /// The ENCODING entry's definition (`SET client_encoding = 'UTF8';`); nil for other entries, or when it is
        /// not valid UTF-8.
        public let definition: String?
        /// An index or constraint whose table's physical row order matters: a BRIN index (it summarises ranges
        /// of the table's blocks, so rows loaded out of their order make it far less selective) or the index
        /// the table is clustered on.
        public let needsRowOrder: Bool

        public init(
            dumpId: Int, desc: String, tag: String, section: Int, hasData: Bool, dataOffset: Int64?,
            dependencies: [Int], copyStatement: String? = nil, definition: String? = nil, needsRowOrder: Bool = false
        ) {
            self.needsRowOrder = needsRowOrder
            self.dataOffset = dataOffset
            self.dumpId = dumpId
            self.desc = desc
            self.tag = tag
            self.section = section
            self.hasData = hasData
            self.dependencies = dependencies
            self.copyStatement = copyStatement
            self.definition = definition
        }

        public static let preData = 2
        public static let data = 3
        public static let postData = 4
    }

    /// What the header and the table of contents say.
    public struct Contents: Sendable {
        public let version: (major: UInt8, minor: UInt8, revision: UInt8)
        public let entries: [Entry]
        /// The size of the header and the table of contents: the first data block starts here.
        public let tableOfContentsSize: Int64
        /// Whether the data blocks are compressed (pg_dump without `-Z0`).
        public let compressed: Bool
        /// The size of the archive's integers, after their sign byte.
        public let intSize: Int

        public init(
            version: (major: UInt8, minor: UInt8, revision: UInt8), entries: [Entry], tableOfContentsSize: Int64,
            compressed: Bool = false, intSize: Int = 4
        ) {
            self.version = version
            self.entries = entries
            self.tableOfContentsSize = tableOfContentsSize
            self.compressed = compressed
            self.intSize = intSize
        }

        /// The archive's encoding (its ENCODING entry, `SET client_encoding = '…';`), which its COPY data is in;
        /// nil when it has none or it is not a plain encoding name.
        public var encoding: String? {
            // pg_restore takes the last of several; pg_dump writes one, so several is not followed at all.
            let found = entries.filter { $0.desc == "ENCODING" }
            guard found.count == 1, let definition = found[0].definition,
                definition.hasPrefix("SET client_encoding = '")
            else { return nil }
            let name = definition.dropFirst("SET client_encoding = '".count).prefix { $0 != "'" }
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }),
                definition.hasSuffix("';\n") || definition.hasSuffix("';")
            else { return nil }
            return String(name)
        }
    }

    /// A data block seen whole.
    public struct Block: Sendable, Equatable {
        public let dumpId: Int
        public let range: Range<Int64>
    }

    public private(set) var contents: Contents?
    /// Why the scan stopped, if it did; nothing more is reported after it.
    public private(set) var failure: String?
    /// Bytes consumed so far.
    public private(set) var position: Int64 = 0
    /// The data block being read, once its header is: its entry and where it starts; nil between blocks.
    public private(set) var opened: (dumpId: Int, start: Int64)?

    /// Past this, by default, a table of contents is not followed (the restore waits for the whole dump instead).
    public static let tableOfContentsLimit = 64 << 20
    private let tableOfContentsLimit: Int

    private var prefix: [UInt8] = []
    private var lastAttempt = 0
    private var intSize = 4
    private var withData: Set<Int> = []

    private enum State {
        case blockType
        case blockId(type: UInt8)
        case chunkLength(blobs: Bool)
        case skip(Int64, blobs: Bool)
        case blobOid
    }
    private var state = State.blockType
    private var field: [UInt8] = []
    private var blockStart: Int64 = 0
    private var blockId = 0

    public init(tableOfContentsLimit: Int = CustomDumpScanner.tableOfContentsLimit) {
        self.tableOfContentsLimit = tableOfContentsLimit
    }

    /// Reads the next bytes of the archive; returns the data blocks they completed, in archive order.
    public func consume(_ bytes: UnsafeRawBufferPointer) -> [Block] {
        guard failure == nil, !bytes.isEmpty else { return [] }
        guard contents == nil else { return scan(bytes) }
        prefix.append(contentsOf: bytes)
        // Parsed again only once enough has arrived since the last try: a large TOC is not re-read per chunk.
        guard prefix.count < 64 << 10 || prefix.count - lastAttempt >= max(64 << 10, lastAttempt / 2) else { return [] }
        lastAttempt = prefix.count
        do {
            // Past the limit whether or not its end has arrived yet: the limit is on the table, not on the wait.
            let parsed = try Self.parseContents(prefix)
            guard (parsed.map { $0.contents.tableOfContentsSize } ?? Int64(prefix.count)) <= tableOfContentsLimit else {
                stop("its table of contents is larger than \(ByteFormat.string(Int64(tableOfContentsLimit)))")
                return []
            }
            guard let parsed else { return [] }
            contents = parsed.contents
            intSize = parsed.intSize
            withData = Set(parsed.contents.entries.filter(\.hasData).map(\.dumpId))
            position = parsed.contents.tableOfContentsSize
            let tail = Array(prefix[Int(parsed.contents.tableOfContentsSize)...])
            prefix = []
            return tail.withUnsafeBytes { scan($0) }
        } catch {
            stop("\(error)")
            return []
        }
    }

    /// The data area: block headers, chunk lengths and payloads.
    private func scan(_ bytes: UnsafeRawBufferPointer) -> [Block] {
        var completed: [Block] = []
        var index = 0
        while index < bytes.count {
            // Chunk payloads are passed over whole; only the few bytes of a header cut by the end of `bytes`, or
            // of a block's, are read one by one.
            if case .skip(let remaining, let blobs) = state {
                let count = min(Int64(bytes.count - index), remaining)
                index += Int(count)
                position += count
                state = count == remaining ? .chunkLength(blobs: blobs) : .skip(remaining - count, blobs: blobs)
                continue
            }
            if case .chunkLength(blobs: false) = state, field.isEmpty {
                // Whole chunk lengths and payloads, as long as they lie in these bytes.
                let next = chunks(bytes, from: index)
                if next > index {
                    index = next
                    continue
                }
            }
            step(bytes[index], &completed)
            if failure != nil { return completed }
            index += 1
            position += 1
        }
        return completed
    }

    /// Passes over a table's data chunks from `start` (where a chunk length begins), reading each length straight
    /// from `bytes` while it lies whole in them: pg_dump writes a chunk per row, so this is most of the framing,
    /// and reading it through `step` a byte at a time took about a tenth of restore-job's processor time on a table
    /// of short rows. Stops before a length cut by the end of `bytes`, a length of 0 (the block's end) or one out
    /// of range, all left to `step`, which reads them as it reads any other; and in a payload running past
    /// `bytes`, left to skip. Returns where it stopped.
    private func chunks(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        let width = 1 + intSize
        var index = start
        while bytes.count - index >= width,
              let length = Self.decode(UnsafeRawBufferPointer(rebasing: bytes[index..<index + width])), length > 0 {
            let payload = index + width
            guard bytes.count - payload >= length else {
                // The payload runs past these bytes.
                state = .skip(Int64(length - (bytes.count - payload)), blobs: false)
                index = bytes.count
                break
            }
            index = payload + length
        }
        position += Int64(index - start)
        return index
    }

    /// After the last byte: whether the archive ended between blocks, as a complete one does.
    /// Returns the blocks completed by bytes not yet parsed (a TOC still waiting for its next try).
    public func finish() -> [Block] {
        guard failure == nil else { return [] }
        var completed: [Block] = []
        if contents == nil && !prefix.isEmpty {
            lastAttempt = 0
            let last = prefix.removeLast()
            completed = [last].withUnsafeBytes { consume($0) }
        }
        guard failure == nil else { return completed }
        guard contents != nil else {
            stop("it ends inside its table of contents")
            return completed
        }
        if case .blockType = state, field.isEmpty { return completed }
        stop("it ends inside a data block")
        return completed
    }

    private func stop(_ why: String) {
        failure = failure ?? why
    }

    /// One byte of a data block's framing.
    private func step(_ byte: UInt8, _ completed: inout [Block]) {
        switch state {
        case .blockType:
            // 1 BLK_DATA (a table's COPY data), 3 BLK_BLOBS (large objects).
            guard byte == 1 || byte == 3 else { return stop("unknown data block type \(byte) at byte \(position)") }
            blockStart = position
            state = .blockId(type: byte)
        case .blockId(let type):
            guard let id = integer(byte) else { return }
            guard withData.contains(id) else {
                return stop("a data block for entry \(id), which the table of contents does not list")
            }
            blockId = id
            opened = (id, blockStart)
            state = type == 3 ? .blobOid : .chunkLength(blobs: false)
        case .chunkLength(let blobs):
            guard let length = integer(byte) else { return }
            guard length >= 0 else { return stop("a negative chunk length at byte \(position)") }
            if length > 0 {
                state = .skip(Int64(length), blobs: blobs)
            } else if blobs {
                state = .blobOid
            } else {
                completed.append(Block(dumpId: blockId, range: blockStart..<(position + 1)))
                opened = nil
                state = .blockType
            }
        case .skip:
            break  // consumed in bulk by `consume`
        case .blobOid:
            guard let oid = integer(byte) else { return }
            if oid == 0 {
                completed.append(Block(dumpId: blockId, range: blockStart..<(position + 1)))
                opened = nil
                state = .blockType
            } else {
                state = .chunkLength(blobs: true)
            }
        }
    }

    /// Gathers one of the archive's integers (a sign byte, then `intSize` bytes, least significant first); nil
    /// until its last byte, and nil with the scan stopped when it is out of range.
    private func integer(_ byte: UInt8) -> Int? {
        field.append(byte)
        guard field.count == 1 + intSize else { return nil }
        defer { field.removeAll(keepingCapacity: true) }
        guard let value = Self.decode(field[...]) else {
            stop("an integer out of range at byte \(position)")
            return nil
        }
        return value
    }

    /// The integer in `bytes` (a sign byte, then its magnitude, least significant byte first), or nil when its
    /// magnitude is above `Int32.max`. pg_dump writes C `int`s (`WriteInt`), so a larger one is not pg_dump's,
    /// whatever the header says the integer size is; refusing it also keeps every later use of the value (a
    /// negation, a length, a count) clear of overflow.
    static func decode<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Int? {
        var magnitude: UInt64 = 0
        for (index, byte) in bytes.dropFirst().enumerated() where byte != 0 {
            guard index < 4 else { return nil }
            magnitude |= UInt64(byte) << (8 * UInt64(index))
        }
        guard magnitude <= UInt64(Int32.max) else { return nil }
        return bytes.first == 0 ? Int(magnitude) : -Int(magnitude)
    }

    private struct Truncated: Error {}
    private struct Invalid: Error, CustomStringConvertible { let description: String }

    /// The header and table of contents from the start of `bytes`; nil when more bytes are needed.
    static func parseContents(_ bytes: [UInt8]) throws -> (contents: Contents, intSize: Int)? {
        var reader = Reader(bytes: bytes)
        do {
            guard try reader.bytes(5) == Array("PGDMP".utf8) else {
                throw Invalid(description: "it is not a pg_dump custom-format archive")
            }
            let major = try reader.byte()
            let minor = try reader.byte()
            let revision = try reader.byte()
            let version = (Int(major) << 16) | (Int(minor) << 8) | Int(revision)
            guard major == 1, (12...16).contains(minor) else {
                throw Invalid(
                    description: "archive version \(major).\(minor).\(revision) is not one this restore follows")
            }
            reader.intSize = Int(try reader.byte())
            let offSize = Int(try reader.byte())
            guard (4...8).contains(reader.intSize), (4...8).contains(offSize) else {
                throw Invalid(description: "unexpected integer sizes \(reader.intSize)/\(offSize)")
            }
            guard try reader.byte() == 1 else { throw Invalid(description: "it is not in the custom format") }
            // Compression: an algorithm from 1.15 on (0: none), a level before (0: none, -1: zlib's default).
            let compressed = version >= 0x010F00 ? try reader.byte() != 0 : try reader.integer() != 0
            for _ in 0..<7 { _ = try reader.integer() }  // creation time
            _ = try reader.string()  // database name
            _ = try reader.string()  // server version
            _ = try reader.string()  // pg_dump version
            let count = try reader.integer()
            guard count >= 0 else { throw Invalid(description: "a negative entry count") }
            var entries: [Entry] = []
            var section = Entry.preData
            for _ in 0..<count {
                let dumpId = try reader.integer()
                guard dumpId > 0 else { throw Invalid(description: "entry ID \(dumpId) out of range") }
                _ = try reader.integer()  // had a data dumper
                _ = try reader.string()  // table oid
                _ = try reader.string()  // oid
                let tag = try reader.string() ?? ""
                let desc = try reader.string() ?? ""
                let own = try reader.integer()
                if own != 1 { section = own }
                // Kept only where a restore needs them: the encoding, an index's need of row order, a table's COPY.
                let definition =
                    ["ENCODING", "INDEX", "CONSTRAINT"].contains(desc) ? try reader.exactString() : try reader.skipString()
                // pg_dump.c `dumpIndex`/`dumpConstraint`: "… USING brin (…)", "ALTER TABLE … CLUSTER ON …".
                let needsRowOrder =
                    definition.map { $0.contains(" USING brin (") || $0.contains(" CLUSTER ON ") } ?? false
                _ = try reader.skipString()  // drop statement
                let copyStatement = desc == "TABLE DATA" ? try reader.exactString() : try reader.skipString()
                for _ in 0..<3 { _ = try reader.string() }  // schema, tablespace, table access method
                if version >= 0x011000 { _ = try reader.integer() }  // relkind
                _ = try reader.string()  // owner
                _ = try reader.string()  // "with oids"
                var dependencies: [Int] = []
                while let dependency = try reader.string() {
                    guard let id = Int(dependency) else {
                        throw Invalid(description: "entry \(dumpId) has a dependency \(dependency)")
                    }
                    dependencies.append(id)
                }
                let dataState = try reader.byte()
                // pg_backup_archiver.c `ReadOffset`: offSize bytes, least significant first.
                let offset = try reader.bytes(offSize).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                guard (1...3).contains(dataState) else {
                    throw Invalid(description: "entry \(dumpId) has an unknown data state \(dataState)")
                }
                entries.append(
                    Entry(
                        dumpId: dumpId, desc: desc, tag: tag, section: section, hasData: dataState != 3,
                        dataOffset: dataState == 2 && offset <= UInt64(Int64.max) ? Int64(offset) : nil,
                        dependencies: dependencies, copyStatement: copyStatement,
                        definition: desc == "ENCODING" ? definition : nil, needsRowOrder: needsRowOrder))
            }
            return (
                Contents(
                    version: (major, minor, revision), entries: entries, tableOfContentsSize: Int64(reader.offset),
                    compressed: compressed, intSize: reader.intSize),
                reader.intSize
            )
        } catch is Truncated {
            return nil
        }
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0
        var intSize = 4

        mutating func byte() throws -> UInt8 {
            guard offset < bytes.count else { throw Truncated() }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func bytes(_ count: Int) throws -> [UInt8] {
            guard bytes.count - offset >= count else { throw Truncated() }
            defer { offset += count }
            return Array(bytes[offset..<(offset + count)])
        }

        mutating func integer() throws -> Int {
            guard bytes.count - offset >= 1 + intSize else { throw Truncated() }
            guard let value = CustomDumpScanner.decode(bytes[offset..<(offset + 1 + intSize)]) else {
                throw Invalid(description: "an integer out of range at byte \(offset)")
            }
            offset += 1 + intSize
            return value
        }

        mutating func string() throws -> String? {
            let length = try integer()
            guard length >= 0 else { return nil }
            guard length <= 1 << 30 else {
                throw Invalid(description: "a string of \(length) bytes in the table of contents")
            }
            return String(decoding: try bytes(length), as: UTF8.self)
        }

        /// A string passed over.
        mutating func skipString() throws -> String? {
            let length = try integer()
            guard length > 0 else { return nil }
            guard length <= 1 << 30 else {
                throw Invalid(description: "a string of \(length) bytes in the table of contents")
            }
            guard bytes.count - offset >= length else { throw Truncated() }
            offset += length
            return nil
        }

        /// A string kept only when it is valid UTF-8, so that it is what the dump holds, byte for byte.
        mutating func exactString() throws -> String? {
            let length = try integer()
            guard length >= 0 else { return nil }
            guard length <= 1 << 30 else {
                throw Invalid(description: "a string of \(length) bytes in the table of contents")
            }
            return String(validating: try bytes(length), as: UTF8.self)
        }
    }
}
