import BackupCore
import BackupInterop
import BackupStorage
import Foundation
import Synchronization

/// The database dump between pg_dump and the archive, or between the archive and pg_restore: the one member
/// staged on disk (a tar header needs its size first; pg_restore needs the whole dump).
///
/// When the backup is encrypted, the dump is staged encrypted too, with age, for a key that exists only in
/// this process's memory: no plaintext copy of the database ever touches the disk, and a crash leaves only
/// ciphertext nobody can read.
///
/// Sendable because, once `finish` has run, nothing in it changes: `input` and `source` open new handles, so a
/// restore may start on it in another task while the verifier goes on reading the rest of the archive.
final class StagedDump: @unchecked Sendable {
    let file: TemporaryFile
    private let key: AgeIdentity?
    /// Plaintext bytes staged, once `finish` has run.
    private(set) var size: Int64 = 0
    private var writing: (file: LocalFile, age: AgeEncryptingSink?, counter: CountingSink, checker: BlockCheckingSink?)?
    /// What has reached the file and been checked so far, for a restore that starts before the whole dump is
    /// there (staged with `followed`).
    let arrival: DumpArrival?
    /// The dump as recorded, block hashes included, when it is followed.
    private let expected: (member: BackupMetadata.Member, blocks: BlockHashes)?

    /// Where the sealed payload starts, after age's header and nonce.
    private var payloadStart: Int64 = 0
    /// Whether `release` may have zeroed some of the file.
    private let released = Atomic<Bool>(false)

    /// `followed`: the dump as its manifest records it; when that records its block hashes, a restore may
    /// follow the dump as it arrives (`arrival`), each block checked before it is announced. Without block
    /// hashes (backups made before they were recorded) the dump is not followed: it is used once it is whole
    /// and its sha256 matches.
    init(staging: LocalStaging, name: String, sealed: Bool, followed: BackupMetadata.Member? = nil) throws {
        file = try staging.makeTemporaryFile(name)
        key = sealed ? AgeIdentity.generate() : nil
        if let followed, let blocks = followed.blocks, blocks.describes(size: followed.size) {
            expected = (followed, blocks)
            // Sealed, the last chunk's worth of bytes written is still held by the encryption when `write` returns.
            arrival = DumpArrival(lag: sealed ? Int64(AgeDecryptingSource.chunkSize) : 0, checkedBlocks: true)
        } else {
            expected = nil
            arrival = nil
        }
    }

    var isSealed: Bool { key != nil }

    /// The dump as recorded, when its blocks are checked as they are staged: once `finish` has returned, the
    /// staged bytes are exactly these (every block matched its hash, the length the recorded one).
    var checkedMember: BackupMetadata.Member? { expected?.member }

    /// Where to write the dump; call `finish` after the last byte.
    func sink() throws -> any ByteSink {
        let target = try LocalFile(writing: file.path)
        let age = try key.flatMap { key in try key.recipient.map { try AgeEncryptingSink(recipients: [$0], next: target) } }
        if age != nil { payloadStart = Int64(try target.status().st_size) }
        let written: any ByteSink = age ?? target
        let observed = arrival.map { ObservedSink(written, arrival: $0) } ?? written
        let checker = expected.map { BlockCheckingSink(observed, expected: $0.member, blocks: $0.blocks, arrival: arrival) }
        let counter = CountingSink(checker ?? observed)
        writing = (target, age, counter, checker)
        return counter
    }

    /// The file itself, for pg_dump to write (`--file`) when the dump is not sealed; call `finish` after.
    /// pg_dump writing a file it can seek in records where each table's data starts; through a pipe it cannot,
    /// and then every pg_restore job has to read its way through the dump to find a table (a second or more
    /// per restore of a gigabyte).
    var writablePath: String? { key == nil ? file.path : nil }

    /// After the last byte, through `sink` or into `writablePath`.
    func finish() throws {
        guard let writing else {
            if key == nil { size = file.size }
            return
        }
        try writing.checker?.finish()
        try writing.age?.finish()
        size = writing.counter.count
        writing.file.close()
        self.writing = nil
        arrival?.finish()
    }

    /// Whether every staged byte is still in the file: false once `release` has freed some, after which only
    /// the steps of the restore that freed them may read it (`DatabaseRestorer.complete` reads the dump from the
    /// archive again for a restore in place).
    var isWhole: Bool { !released.load(ordering: .acquiring) }

    /// Frees the staged bytes of `range`, a table's data that is loaded into the new database and that no later
    /// step reads: their disk space and page cache go back while the restore goes on, instead of when it ends.
    /// The last large table's data, loaded as it arrives, is then never on disk whole, and the pages it took are
    /// taken again by what follows (on a virtual machine that hands free memory back to its host, a page taken
    /// for the first time costs many times its copy). Plain dumps only: a sealed one's file is ciphertext, at
    /// other offsets.
    func release(_ range: Range<Int64>) {
        guard key == nil, file.release(range) else { return }
        released.store(true, ordering: .releasing)
    }

    /// The plaintext dump, from its start.
    func source() throws -> any ByteSource {
        let file = try LocalFile(reading: file.path)
        guard let key else { return file }
        return try AgeDecryptingSource(identities: [key], source: file)
    }

    /// The plaintext bytes at `ranges`, one after the other. Sealed, each range is decrypted from the chunk
    /// it starts in (so a range can be read as soon as its chunks are written, before the dump is whole).
    func source(ranges: [Range<Int64>]) throws -> any ByteSource {
        try ConcatenatedSource(ranges.map { range in
            guard let key else {
                let file = try LocalFile(reading: file.path)
                try file.seek(to: range.lowerBound)
                return SliceSource(file, length: Int64(range.count))
            }
            let chunk = range.lowerBound / Int64(AgeDecryptingSource.chunkSize)
            let header = try LocalFile(reading: file.path)
            let payload = try LocalFile(reading: file.path)
            try payload.seek(to: AgeDecryptingSource.chunkOffset(chunk, payloadStart: payloadStart))
            let plain = try AgeDecryptingSource(
                identities: [key], source: ConcatenatedSource([SliceSource(header, length: payloadStart), payload]), firstChunk: UInt64(chunk))
            return SliceSource(plain, skip: range.lowerBound - chunk * Int64(AgeDecryptingSource.chunkSize), length: Int64(range.count))
        })
    }

    /// The plain dump from `start` on, read as it is staged: each read waits for checked bytes past what was
    /// read (`DumpArrival.bytes(after:)`), and the end of the dump is its end. For a block still arriving; not
    /// for a sealed dump (whose chunks are only readable whole). With `releasingBefore`, what has been read is
    /// freed behind the reader (`release`) a few MiB at a time, never at or past that offset: the reader reads on
    /// past its block's end, into blocks other steps still need.
    func following(
        from start: Int64, arrival: DumpArrival, releasingBefore end: Int64? = nil, stopped: @escaping () -> Bool
    ) throws -> any ByteSource {
        guard key == nil else { throw ContingencyError.failed("a sealed dump is not read as it is staged") }
        let file = try LocalFile(reading: file.path)
        try file.seek(to: start)
        return FollowingSource(
            file, from: start, arrival: arrival, stopped: stopped, release: end.map { end in (end, { self.release($0) }) })
    }

    /// For pg_restore: the file itself when plain (it can seek in it), a decrypting stream when sealed.
    func input() throws -> PostgresTools.DumpInput {
        key == nil ? .file(file.path) : .stream(try source())
    }
}

/// Counts what passes through on its way to another sink.
final class CountingSink: ByteSink {
    private let next: any ByteSink
    private(set) var count: Int64 = 0

    init(_ next: any ByteSink) { self.next = next }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try next.write(bytes)
        count += Int64(bytes.count)
    }
}

/// A file read up to what its `DumpArrival` says is staged and checked, waiting for more at that point; with
/// `release`, what it has read before `release.end` is handed to `release.body` every `releaseStep` bytes.
final class FollowingSource: ByteSource {
    private let file: LocalFile
    private let arrival: DumpArrival
    private let stopped: () -> Bool
    private let release: (end: Int64, body: (Range<Int64>) -> Void)?
    private var position: Int64
    private var releasedUpTo: Int64
    private var available: (end: Int64, whole: Bool) = (0, false)
    static let releaseStep: Int64 = 4 << 20

    init(
        _ file: LocalFile, from start: Int64, arrival: DumpArrival, stopped: @escaping () -> Bool,
        release: (end: Int64, body: (Range<Int64>) -> Void)? = nil
    ) {
        self.file = file
        self.arrival = arrival
        self.stopped = stopped
        self.release = release
        position = start
        releasedUpTo = start
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if position >= available.end {
            guard !available.whole else { return 0 }
            available = try arrival.bytes(after: position, stopped: stopped)
            guard position < available.end else { return 0 }
        }
        let wanted = Int(min(Int64(buffer.count), available.end - position))
        let count = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<wanted]))
        // The file holds every byte before `available.end`: fewer means it changed under the restore.
        guard count > 0 else { throw ContingencyError.failed("the staged dump ends before what was staged") }
        position += Int64(count)
        if let release, min(position, release.end) - releasedUpTo >= Self.releaseStep {
            let end = min(position, release.end)
            release.body(releasedUpTo..<end)
            releasedUpTo = end
        }
        return count
    }
}
