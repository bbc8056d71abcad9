import BackupCore
import BackupKit
import BackupStorage
import Foundation
import Testing

/// Leases and requests, checked the same way on every store: they are built on the `Storage` contract alone,
/// so the volume and the bucket must give the same answers.
enum CoordinationChecks {
    static func leaseSemantics(_ storage: any Storage) async throws {
        let first = try await Lease.acquire("store", storage: storage, job: "one", ttl: 3, timeout: 0)
        let refused = await #expect(throws: ContingencyError.self) {
            _ = try await Lease.acquire("store", storage: storage, job: "two", ttl: 3, timeout: 0)
        }
        // The error names the holder and says how to break the lease.
        #expect(refused?.message.contains("locked by one (pid \(getpid()) on host") == true, "\(String(describing: refused))")
        #expect(refused?.hint?.contains("LOCK_TTL") == true)
        // Simulate a holder that stopped renewing: its last write, with a lease time of one second, is its last.
        let key = Lease.key(for: "store")
        let current = try #require(try storage.read(key: key))
        var record = try ContingencyJSON.decoder().decode(LeaseRecord.self, from: Data(current.data))
        record.ttl = 1
        _ = try #require(try storage.replace(key: key, data: Array(try ContingencyJSON.encoder().encode(record)), ifMatch: current.etag))
        let second = try await Lease.acquire("store", storage: storage, job: "two", ttl: 3, timeout: 10)
        #expect(second.token == first.token + 1)
        // The old holder is fenced out: its renewal is refused and its release leaves the new lease alone.
        #expect(throws: ContingencyError.self) { try first.confirm() }
        first.release()
        let after = try ContingencyJSON.decoder().decode(LeaseRecord.self, from: Data(try #require(try storage.read(key: key)).data))
        #expect(after.job == "two" && !after.released)
        try second.confirm()
        second.release()
        let third = try await Lease.acquire("store", storage: storage, job: "three", ttl: 3, timeout: 0)
        #expect(third.token == second.token + 1)
        third.release()
    }

    /// 20 contenders for one lease, `rounds` times: never two holders at once, every one gets its turn.
    /// `ownThreads`: each contender on a thread of its own, at normal priority (the test process shares the
    /// cooperative pool's two threads; a holder waiting there past its TTL would lose its lease). The bucket's
    /// check keeps the pool: moto, the S3 server of the tests, is not built for twenty truly simultaneous
    /// conditional writes.
    static func contenders(_ storage: any Storage, rounds: Int, ownThreads: Bool = false) async throws {
        for round in 0..<rounds {
            let holders = Holders()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<20 {
                    let contend: @Sendable () async throws -> Void = {
                        // A lease time far beyond the 5 ms it is held: on a loaded machine a holder may wait seconds
                        // for a thread, and this checks mutual exclusion, not expiry (leaseSemantics does).
                        let lease = try await Lease.acquire("contended", storage: storage, job: "r\(round)c\(index)", ttl: 60, timeout: 120)
                        holders.enter()
                        try lease.confirm()
                        try await Task.sleep(for: .milliseconds(5))
                        holders.leave()
                        lease.release()
                    }
                    if ownThreads {
                        let executor = BackgroundExecutor(name: "contender\(index)", lowerPriority: false)
                        group.addTask(executorPreference: executor) {
                            defer { executor.stop() }
                            try await contend()
                        }
                    } else {
                        group.addTask { try await contend() }
                    }
                }
                try await group.waitForAll()
            }
            #expect(holders.maximum == 1, "round \(round)")
            #expect(holders.total == 20, "round \(round)")
        }
    }

    static func requests(_ storage: any Storage) async throws {
        let board = RequestBoard(storage: storage)
        // Twenty creators of the rollback request for one incident: one request, the same for all.
        let outcomes = try await withThrowingTaskGroup(of: (StoreRequest, Bool).self) { group in
            for index in 0..<20 {
                group.addTask {
                    let outcome = try board.submit(
                        id: "rollback-incident-1", intent: .rollback, requestedBy: "sidecar-\(index)")
                    return (outcome.request, outcome.created)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.filter(\.1).count == 1)
        let made = try #require(outcomes.first { $0.1 }?.0)
        #expect(outcomes.allSatisfy { $0.0 == made })
        #expect(try board.list().map(\.id) == ["rollback-incident-1"])

        // Two workers race to take it: one does.
        let taken = try await withThrowingTaskGroup(of: Bool.self) { group in
            for worker in 0..<5 {
                group.addTask {
                    try board.transition("rollback-incident-1", from: .pending, to: .running, worker: "w\(worker)") != nil
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(taken == 1)
        let failed = try #require(try board.transition("rollback-incident-1", from: .running, to: .failed, reason: "pg_restore failed"))
        #expect(failed.status == .failed && failed.reason == "pg_restore failed" && failed.worker != nil)
        #expect(try board.transition("rollback-incident-1", from: .running, to: .succeeded) == nil)
        #expect(throws: ContingencyError.self) { _ = try board.submit(id: "../escape", intent: .backup, requestedBy: "test") }
    }
}
