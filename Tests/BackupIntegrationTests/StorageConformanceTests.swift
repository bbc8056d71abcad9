import BackupCore
import BackupStorage
import Foundation
import Synchronization
import Testing
import TestSupport

/// The `Storage` contract, checked the same way on every store (the volume here; a bucket store runs the same
/// checks): atomic publish, conditional create, compare-and-swap, listing, missing objects, the store's clock.
enum StorageConformance {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    static func check(_ storage: any Storage) async throws {
        // Nothing is visible before commit; everything after.
        let writer = try storage.makeWriter(key: "a/object.bin")
        try bytes("hello ").withUnsafeBytes { try writer.write($0) }
        try bytes("world").withUnsafeBytes { try writer.write($0) }
        #expect(try storage.read(key: "a/object.bin") == nil)
        #expect(try storage.list(folder: "a").isEmpty)
        try writer.commit {}
        #expect(try storage.read(key: "a/object.bin")?.data == bytes("hello world"))
        #expect(try storage.list(folder: "a").map(\.key) == ["a/object.bin"])
        let reader = try #require(try storage.openReader(key: "a/object.bin"))
        #expect(reader.size == 11)

        // Aborted, abandoned, or refused by the fencing check: nothing published.
        let aborted = try storage.makeWriter(key: "a/aborted")
        try bytes("x").withUnsafeBytes { try aborted.write($0) }
        aborted.abort()
        do {
            let abandoned = try storage.makeWriter(key: "a/abandoned")
            try bytes("x").withUnsafeBytes { try abandoned.write($0) }
        }
        let fenced = try storage.makeWriter(key: "a/fenced")
        #expect(throws: ContingencyError.self) { try fenced.commit { throw ContingencyError.locked("lease lost") } }
        #expect(try storage.list(folder: "a").map(\.key) == ["a/object.bin"])

        // Missing objects are nil or false, never errors.
        #expect(try storage.read(key: "a/missing") == nil)
        #expect(try storage.openReader(key: "a/missing") == nil)
        #expect(try storage.delete(key: "a/missing", ifMatch: nil) == false)

        // put replaces; versions change with content.
        try storage.put(key: "b/state.json", data: bytes("one"))
        let first = try #require(try storage.read(key: "b/state.json"))
        try storage.put(key: "b/state.json", data: bytes("two"))
        let second = try #require(try storage.read(key: "b/state.json"))
        #expect(second.data == bytes("two") && second.etag != first.etag)

        // Conditional create: once.
        let created = try #require(try storage.create(key: "c/lock", data: bytes("mine")))
        #expect(try storage.create(key: "c/lock", data: bytes("theirs")) == nil)
        #expect(try storage.read(key: "c/lock")?.data == bytes("mine"))

        // Compare-and-swap: only against the current version.
        #expect(try storage.replace(key: "c/lock", data: bytes("stale"), ifMatch: "not-the-version") == nil)
        let swapped = try #require(try storage.replace(key: "c/lock", data: bytes("renewed"), ifMatch: created))
        #expect(try storage.replace(key: "c/lock", data: bytes("late"), ifMatch: created) == nil)
        #expect(try storage.read(key: "c/lock")?.data == bytes("renewed"))
        #expect(try storage.replace(key: "c/absent", data: bytes("x"), ifMatch: swapped) == nil)

        // Conditional delete.
        #expect(try storage.delete(key: "c/lock", ifMatch: created) == false)
        #expect(try storage.delete(key: "c/lock", ifMatch: swapped) == true)
        #expect(try storage.read(key: "c/lock") == nil)

        // Many concurrent creators: exactly one wins.
        let winners = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<20 {
                group.addTask { try storage.create(key: "d/contended", data: bytes("creator \(index)")) != nil }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(winners == 1)

        // The store's clock: objects are stamped by the clock `currentTime()` reads.
        try StoreClockChecks.clock(storage)
    }
}

@Suite("Storage contract")
struct StorageConformanceTests {
    @Test("the volume store keeps the Storage contract")
    func volume() async throws {
        let folder = try TemporaryDirectory()
        let storage = try VolumeStorage(root: folder.path)
        try await StorageConformance.check(storage)
        #expect(try storage.availableBytes() ?? 0 > 0)
        // Nothing is left in the temporary folder once writers are done.
        #expect(storage.removeStaleTemporaries() == 0)
    }
}

@Suite("Volume folders")
struct VolumeFolderTests {
    @Test("writers racing to make the same new folders all succeed (processes sharing a volume do this)")
    func racingFolders() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let storage = try VolumeStorage(root: folder.path)
        let failures = Mutex<[String]>([])
        for round in 0..<100 {
            DispatchQueue.concurrentPerform(iterations: 8) { writer in
                do {
                    let object = try storage.makeWriter(key: "round\(round)/state/health/deep/w\(writer).json")
                    try [UInt8](repeating: 1, count: 8).withUnsafeBytes { try object.write($0) }
                    try object.commit {}
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty)
        #expect(try storage.list(folder: "round99/state/health/deep").count == 8)
    }

    @Test("a file where a folder should be: a clear error naming the path, nothing written")
    func fileInTheWay() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let storage = try VolumeStorage(root: folder.path)
        try Data("x".utf8).write(to: folder.url.appendingPathComponent("state"))
        #expect {
            _ = try storage.makeWriter(key: "state/health/a.json")
        } throws: { error in
            "\(error)".contains("creating folder \(folder.path)/state/health")
        }
        #expect(try String(contentsOf: folder.url.appendingPathComponent("state"), encoding: .utf8) == "x", "the file is left as it was")
    }

    @Test("a FIFO or a device in the store is refused at once, never waited for nor read without end")
    func specialFiles() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let storage = try VolumeStorage(root: folder.path)
        #expect(mkfifo(folder.url.appendingPathComponent("fifo.prom").path, 0o600) == 0)
        try FileManager.default.createSymbolicLink(
            atPath: folder.url.appendingPathComponent("zero.prom").path, withDestinationPath: "/dev/zero")
        for key in ["fifo.prom", "zero.prom"] {
            #expect {
                _ = try storage.read(key: key)
            } throws: { error in
                "\(error)".contains("not a regular file")
            }
        }
    }
}
