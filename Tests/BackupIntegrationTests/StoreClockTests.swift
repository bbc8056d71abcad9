import BackupCore
import BackupStorage
import Foundation
import TestSupport
import Testing

/// The store's clock, checked the same way on every store: `currentTime()` and objects' `modified` come from
/// it, and leases judge expiry by it, whatever the clocks of the hosts that wrote them say.
enum StoreClockChecks {
    static func encode(_ record: LeaseRecord) throws -> [UInt8] { Array(try ContingencyJSON.encoder().encode(record)) }

    /// An object written between two readings of the store's time is stamped between them (within a second:
    /// a bucket's clock counts whole seconds).
    static func clock(_ storage: any Storage) throws {
        let before = try storage.currentTime()
        try storage.put(key: "clock/object", data: [1])
        let object = try #require(try storage.read(key: "clock/object"))
        let after = try storage.currentTime()
        #expect(after >= before)
        #expect(
            object.modified >= before.addingTimeInterval(-1) && object.modified <= after.addingTimeInterval(1),
            "written \(object.modified), store time \(before) … \(after)")
        // Both test stores run on this machine, so their clock is this host's.
        #expect(abs(after.timeIntervalSinceNow) < 5, "\(after)")
        try storage.delete(key: "clock/object", ifMatch: nil)
    }

    /// Lease objects as hosts with skewed clocks write them: their times are an hour off, yet a live one is
    /// not broken and a dead one is taken over after its lease time, measured on the store's clock.
    static func skewedHolders(_ storage: any Storage) async throws {
        let key = Lease.key(for: "skewed")
        func record(owner: String, hostClock: Date, ttl: Double?, token: Int) -> LeaseRecord {
            LeaseRecord(
                owner: owner, job: "backup-job", host: "skewed-\(owner)", pid: 7,
                acquired: hostClock.addingTimeInterval(-120),
                renewed: hostClock, expires: hostClock.addingTimeInterval(ttl ?? 30), token: token, released: false,
                ttl: ttl)
        }

        // Renewed just now by a host whose clock is an hour behind: by its own times it expired an hour ago.
        let behind = Date().addingTimeInterval(-3600)
        var tag = try #require(
            try storage.create(key: key, data: encode(record(owner: "behind", hostClock: behind, ttl: 30, token: 4))))
        let refused = await #expect(throws: ContingencyError.self) {
            _ = try await Lease.acquire("skewed", storage: storage, job: "restore-job", ttl: 30, timeout: 0)
        }
        #expect(refused?.exitStatus == .locked)
        // The holder is described with durations only: held 2m (its clock) plus the time since its last write
        // (the store's), expiring in about 30 s, not "an hour ago".
        #expect(
            refused?.message.contains("locked by backup-job (pid 7 on host skewed-behind, held for 2m") == true,
            "\(String(describing: refused))")
        #expect(refused?.message.contains("lease expires in 0s") == false, "\(String(describing: refused))")

        // The same from a holder of an older version, whose record has no `ttl`: expires - renewed (30 s) is used.
        tag = try #require(
            try storage.replace(
                key: key, data: encode(record(owner: "old", hostClock: behind, ttl: nil, token: 4)), ifMatch: tag))
        await #expect(throws: ContingencyError.self) {
            _ = try await Lease.acquire("skewed", storage: storage, job: "restore-job", ttl: 30, timeout: 0)
        }

        // Written by a host whose clock is an hour ahead, which then died: by its own times it lasts another
        // hour; by the store's clock its one-second lease time ran out, so the next job takes it over (judged by
        // the record's own `expires`, it would wait out the timeout and throw `.locked`).
        let ahead = Date().addingTimeInterval(3600)
        tag = try #require(
            try storage.replace(
                key: key, data: encode(record(owner: "ahead", hostClock: ahead, ttl: 1, token: 4)), ifMatch: tag))
        let taken = try await Lease.acquire("skewed", storage: storage, job: "restore-job", ttl: 30, timeout: 30)
        #expect(taken.token == 5)
        taken.release()
    }
}

@Suite("The store's clock")
struct StoreClockTests {
    @Test("on a volume, leases of hosts with skewed clocks are judged by the file system's clock")
    func volume() async throws {
        let folder = try TemporaryDirectory()
        let storage = try VolumeStorage(root: folder.path)
        try await StoreClockChecks.skewedHolders(storage)
        #expect(storage.removeStaleTemporaries() == 0)
    }

    @Test("in a bucket, leases of hosts with skewed clocks are judged by the server's Date")
    func bucket() async throws {
        try await TestBucket.with { bucket in
            let storage = try S3Storage.open(bucket.configuration(), coordinating: true)
            try StoreClockChecks.clock(storage)
            try await StoreClockChecks.skewedHolders(storage)
        }
    }
}
