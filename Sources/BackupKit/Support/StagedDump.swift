import BackupCore
import BackupInterop
import BackupStorage
import Foundation

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
    private var writing: (file: LocalFile, age: AgeEncryptingSink?, counter: CountingSink)?
    /// What has reached the file so far, for a restore that starts before the whole dump is there; only for a
    /// plain (unsealed) dump staged with `followed`, whose bytes are in the file as soon as they are written.
    let arrival: DumpArrival?

    init(staging: LocalStaging, name: String, sealed: Bool, followed: Bool = false) throws {
        file = try staging.makeTemporaryFile(name)
        key = sealed ? AgeIdentity.generate() : nil
        arrival = followed && !sealed ? DumpArrival() : nil
    }

    /// Where to write the dump; call `finish` after the last byte.
    func sink() throws -> any ByteSink {
        let target = try LocalFile(writing: file.path)
        let age = try key.flatMap { key in try key.recipient.map { try AgeEncryptingSink(recipients: [$0], next: target) } }
        let counter = CountingSink(age ?? arrival.map { ObservedSink(target, arrival: $0) } ?? target)
        writing = (target, age, counter)
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
        try writing.age?.finish()
        size = writing.counter.count
        writing.file.close()
        self.writing = nil
        arrival?.finish()
    }

    /// The plaintext dump, from its start.
    func source() throws -> any ByteSource {
        let file = try LocalFile(reading: file.path)
        guard let key else { return file }
        return try AgeDecryptingSource(identities: [key], source: file)
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
