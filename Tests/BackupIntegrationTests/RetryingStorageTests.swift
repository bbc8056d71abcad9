import BackupCore
import BackupKit
@testable import BackupStorage
import Foundation
import Logging
import Prometheus
import Testing
import TestSupport

/// The decorator that retries a store's whole operations on transient faults (`RetryingStorage`), over a real
/// bucket (moto, behind the fault proxy) opened as every job opens it (`S3Storage.open`), its retries counted in
/// swift-prometheus' registry through the swift-metrics API and its log lines collected.
@Suite("Retrying store", .serialized)
struct RetryingStorageTests {
    /// The bucket through the proxy, opened as the jobs open it, with `retries` and a logger; retries counted in
    /// `registry`.
    static func open(
        _ bucket: TestBucket, _ proxy: FaultProxy, retries: Int = 4, log: LogCollector,
        registry: PrometheusCollectorRegistry
    ) throws -> any Storage {
        var configuration = bucket.configuration(endpoint: proxy.endpoint)
        configuration.retries = retries
        let storage = try S3Storage.open(configuration, coordinating: false, logger: log.logger)
        storage.countRetries(in: PrometheusMetricsFactory(registry: registry))
        return storage
    }

    /// Waits for the clock's next second: a lease's times are written to the second, and a renewal within the
    /// second of the previous write would write the same bytes, whose ETag still matches when it is repeated.
    static func nextSecond() async throws {
        let now = Int(Date().timeIntervalSince1970)
        try await eventually("the clock's next second") { Int(Date().timeIntervalSince1970) > now }
    }

    static func retries(_ registry: PrometheusCollectorRegistry) throws -> Double {
        MeteredStorageTests.value(
            try MeteredStorageTests.scrape(registry), "contingency_store_retries_total", ["store": "bucket"]) ?? 0
    }

    @Test("a put, a read and a listing that meet transient faults are repeated until they succeed, each retry counted")
    func transientFaultsRetried() async throws {
        try await TestBucket.with { bucket in
            try await FaultProxy.with(upstream: bucket.moto.endpoint) { proxy in
                let log = LogCollector()
                let registry = PrometheusCollectorRegistry()
                let storage = try Self.open(bucket, proxy, log: log, registry: registry)
                let object = "\(bucket.prefix)/settings.json"

                try proxy.set(
                    FaultProxy.Faults([.status(503, count: 2, method: "PUT", targetContains: "settings.json")]))
                try storage.put(key: "settings.json", data: Array("{\"a\":1}".utf8))
                #expect(try proxy.stats().faultsInjected == 2)

                // A reset connection, in the middle of the answer.
                try proxy.set(
                    FaultProxy.Faults([
                        .cutAfter(bytes: 2, of: .response, count: 3, method: "GET", targetContains: "settings.json")
                    ]))
                #expect(try storage.read(key: "settings.json")?.data == Array("{\"a\":1}".utf8))
                #expect(try proxy.stats().faultsInjected == 5)

                try proxy.set(FaultProxy.Faults([.status(500, count: 1, method: "GET", targetContains: "list-type")]))
                #expect(try storage.list(folder: "").map(\.name) == ["settings.json"])
                #expect(try proxy.stats().faultsInjected == 6)

                #expect(try Self.retries(registry) == 6)
                let retried = log.lines.filter { $0.contains("retrying in") }
                #expect(retried.count == 6, "\(log.lines)")
                #expect(
                    retried.first?.hasPrefix("PUT s3://\(bucket.name)/\(object): HTTP 503 SlowDown; retrying in ")
                        == true,
                    "\(retried)")
                #expect(retried.first?.hasSuffix("s (attempt 2 of 5)") == true, "\(retried)")
                #expect(retried.contains { $0.hasPrefix("GET s3://\(bucket.name)/\(object): ") }, "\(retried)")
                #expect(retried.last?.contains("HTTP 500 InternalError; retrying in ") == true, "\(retried)")
            }
        }
    }

    @Test("a permanent 403 is not retried; a lasting 503 fails after the retries, saying how many times and with what")
    func permanentAndLastingFaults() async throws {
        try await TestBucket.with { bucket in
            try await FaultProxy.with(upstream: bucket.moto.endpoint) { proxy in
                let log = LogCollector()
                let registry = PrometheusCollectorRegistry()
                let storage = try Self.open(bucket, proxy, retries: 2, log: log, registry: registry)
                try storage.put(key: "kept.json", data: [1])

                try proxy.set(FaultProxy.Faults(status: 403, errorCode: "AccessDenied", count: nil, method: "GET"))
                let denied = try #require(throws: ContingencyError.self) { try storage.read(key: "kept.json") }
                #expect(denied.message.contains("AccessDenied") && denied.message.contains("kept.json"), "\(denied)")
                #expect(try proxy.stats().faultsInjected == 1, "one attempt only")
                #expect(!log.lines.contains { $0.contains("retrying") }, "\(log.lines)")
                #expect(try Self.retries(registry) == 0)

                try proxy.set(FaultProxy.Faults(status: 503, count: nil, method: "GET"))
                let lasting = try #require(throws: ContingencyError.self) { try storage.read(key: "kept.json") }
                let key = "s3://\(bucket.name)/\(bucket.prefix)/kept.json"
                #expect(lasting.message == "GET \(key) failed 3 times, the last with HTTP 503 SlowDown", "\(lasting)")
                #expect(lasting.hint?.contains("S3_RETRIES") == true, "\(lasting)")
                #expect(try proxy.stats().faultsInjected == 4)
                #expect(try Self.retries(registry) == 2)
            }
        }
    }

    @Test("a create whose answer was lost is repeated and refused: the key exists, with what the first one wrote")
    func lostCreateAnswer() async throws {
        try await TestBucket.with { bucket in
            try await FaultProxy.with(upstream: bucket.moto.endpoint) { proxy in
                let registry = PrometheusCollectorRegistry()
                let storage = try Self.open(bucket, proxy, log: LogCollector(), registry: registry)
                // The whole request reaches the server, then both connections close before any byte of the answer
                // (a PUT's answer has no body: a cut inside it would cut nothing).
                try proxy.set(FaultProxy.Faults([.cutAfter(bytes: 1 << 20, of: .request, count: 1, method: "PUT")]))
                #expect(try storage.create(key: "request.json", data: Array("mine".utf8)) == nil)
                #expect(try proxy.stats().faultsInjected == 1)
                #expect(try storage.read(key: "request.json")?.data == Array("mine".utf8))
                #expect(try Self.retries(registry) == 1)
            }
        }
    }

    @Test("lease and request writes whose answers were lost are repeated, refused, and known as their writer's own")
    func lostLeaseAndRequestAnswers() async throws {
        try await TestBucket.with { bucket in
            try await FaultProxy.with(upstream: bucket.moto.endpoint) { proxy in
                let registry = PrometheusCollectorRegistry()
                let storage = try Self.open(bucket, proxy, log: LogCollector(), registry: registry)
                func loseNextAnswer(to target: String) throws {
                    try proxy.set(
                        FaultProxy.Faults([
                            .cutAfter(bytes: 1 << 20, of: .request, count: 1, method: "PUT", targetContains: target)
                        ]))
                }
                try loseNextAnswer(to: "locks")
                let lease = try await Lease.acquire("store", storage: storage, job: "one", ttl: 30, timeout: 0)
                #expect(lease.token == 1)
                try await Self.nextSecond()
                try loseNextAnswer(to: "locks")
                try lease.renew()
                try lease.confirm()
                let board = RequestBoard(storage: storage)
                try loseNextAnswer(to: "requests")
                #expect(try board.submit(id: "rollback-incident-9", intent: .rollback, requestedBy: "sidecar").created)
                try loseNextAnswer(to: "requests")
                let running = try board.transition(
                    "rollback-incident-9", from: .pending, to: .running, worker: "restore-job")
                #expect(running?.status == .running)
                #expect(try board.get("rollback-incident-9")?.request.status == .running)
                #expect(try proxy.stats().faultsInjected == 4)
                #expect(try Self.retries(registry) == 4, "each lost answer retried once")
                lease.release()
                let next = try await Lease.acquire("store", storage: storage, job: "two", ttl: 30, timeout: 0)
                #expect(next.token == 2, "released, then taken over")
                next.release()
            }
        }
    }

    @Test("in a cancelled task a listing stops waiting for its next attempt, while a read and a write go on")
    func cancellation() async throws {
        try await TestBucket.with { bucket in
            try await FaultProxy.with(upstream: bucket.moto.endpoint) { proxy in
                let registry = PrometheusCollectorRegistry()
                // 30 retries: the backoff grows to 8 s, minutes in all.
                let storage = try Self.open(bucket, proxy, retries: 30, log: LogCollector(), registry: registry)
                try storage.put(key: "kept.json", data: [1])
                try proxy.set(FaultProxy.Faults(status: 503, count: nil, method: "GET"))
                let listing = Task.detached { () throws -> [ObjectInfo] in try storage.list(folder: "") }
                try await eventually(timeout: .seconds(60), "the listing to meet five faults") {
                    try proxy.stats().faultsInjected >= 5
                }
                let cancelled = ContinuousClock.now
                listing.cancel()
                let error = try await #require(throws: ContingencyError.self) { try await listing.value }
                #expect(ContinuousClock.now - cancelled < .seconds(5), "stopped waiting at once")
                #expect(error.isCancellation, "\(error)")
                #expect(
                    error.message.contains("GET s3://\(bucket.name) not retried: the job was cancelled"), "\(error)")
                #expect(try proxy.stats().faultsInjected < 31)

                // A small read and a write in a cancelled task (a job's clean-up: its lease confirmed and read back,
                // released, its archive deleted) go on.
                try proxy.set(
                    FaultProxy.Faults([
                        .status(503, count: 3, method: "GET", targetContains: "kept.json"),
                        .status(503, count: 3, method: "PUT"),
                    ]))
                let cleaning = Task.detached { () throws -> (StoredObject?, Bool) in
                    while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(10)) }
                    let read = try storage.read(key: "kept.json")
                    try storage.put(key: "released.json", data: [2])
                    return (read, Task.isCancelled)
                }
                cleaning.cancel()
                let (read, ranCancelled) = try await cleaning.value
                #expect(ranCancelled, "the read and the put ran in a cancelled task")
                #expect(read?.data == [1])
                #expect(try proxy.stats().faultsInjected >= 5 + 6)
                try proxy.set(FaultProxy.Faults())
                #expect(try storage.read(key: "released.json")?.data == [2])
            }
        }
    }

    @Test("a lease renewal whose answer was lost, confirmed in a cancelled task, is read back through faults and kept")
    func lostRenewalInCancelledTask() async throws {
        try await TestBucket.with { bucket in
            try await FaultProxy.with(upstream: bucket.moto.endpoint) { proxy in
                let registry = PrometheusCollectorRegistry()
                let storage = try Self.open(bucket, proxy, log: LogCollector(), registry: registry)
                let lease = try await Lease.acquire("store", storage: storage, job: "one", ttl: 60, timeout: 0)
                try await Self.nextSecond()
                // The renewal reaches the store but its answer is lost; its repeat is refused (412), and the
                // read-back that tells it as this run's own meets two 503s: a SIGTERM during a job's commit.
                try proxy.set(
                    FaultProxy.Faults([
                        .cutAfter(bytes: 1 << 20, of: .request, count: 1, method: "PUT", targetContains: "locks"),
                        .status(503, count: 2, method: "GET", targetContains: "locks"),
                    ]))
                let confirming = Task.detached { () -> String? in
                    while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(10)) }
                    do {
                        try lease.confirm()
                        return nil
                    } catch {
                        return "\(error)"
                    }
                }
                confirming.cancel()
                let failure = await confirming.value
                #expect(failure == nil, "\(failure ?? "")")
                #expect(try proxy.stats().faultsInjected == 3)
                try proxy.set(FaultProxy.Faults())
                lease.release()
                let next = try await Lease.acquire("store", storage: storage, job: "two", ttl: 60, timeout: 0)
                #expect(next.token == 2, "released, then taken over")
                next.release()
            }
        }
    }

    @Test("a lease whose read-back fails after a lost renewal answer is not declared lost, and is released")
    func failedReadBackIsNotLoss() async throws {
        try await TestBucket.with { bucket in
            try await FaultProxy.with(upstream: bucket.moto.endpoint) { proxy in
                let registry = PrometheusCollectorRegistry()
                let storage = try Self.open(bucket, proxy, retries: 1, log: LogCollector(), registry: registry)
                let lease = try await Lease.acquire("store", storage: storage, job: "one", ttl: 60, timeout: 0)
                try await Self.nextSecond()
                try proxy.set(
                    FaultProxy.Faults([
                        .cutAfter(bytes: 1 << 20, of: .request, count: 1, method: "PUT", targetContains: "locks"),
                        .status(503, count: nil, method: "GET", targetContains: "locks"),
                    ]))
                let error = try #require(throws: ContingencyError.self) { try lease.confirm() }
                #expect(error.exitStatus != .locked, "a failed read-back is no proof of a lost lease: \(error)")
                #expect(!error.message.contains("lost the lease"), "\(error)")
                #expect(error.message.contains("reading the lease back"), "\(error)")
                // The next renewal is refused too (the lease is at the version the first one wrote), and its
                // read-back fails again: still no proof either.
                try await Self.nextSecond()
                let again = try #require(throws: ContingencyError.self) { try lease.confirm() }
                #expect(again.exitStatus != .locked, "\(again)")
                try proxy.set(FaultProxy.Faults())
                // The renewal had been written: the next one knows it as this run's and goes on from it.
                try lease.confirm()
                try lease.confirm()
                lease.release()
                let next = try await Lease.acquire("store", storage: storage, job: "two", ttl: 60, timeout: 0)
                #expect(next.token == 2, "released, then taken over")
                next.release()
            }
        }
    }

    @Test("a failed read-back after a lost renewal answer, then release: the written renewal is released")
    func releaseAfterFailedReadBack() async throws {
        try await TestBucket.with { bucket in
            try await FaultProxy.with(upstream: bucket.moto.endpoint) { proxy in
                let registry = PrometheusCollectorRegistry()
                let storage = try Self.open(bucket, proxy, retries: 1, log: LogCollector(), registry: registry)
                let lease = try await Lease.acquire("store", storage: storage, job: "one", ttl: 60, timeout: 0)
                try await Self.nextSecond()
                try proxy.set(
                    FaultProxy.Faults([
                        .cutAfter(bytes: 1 << 20, of: .request, count: 1, method: "PUT", targetContains: "locks"),
                        .status(503, count: nil, method: "GET", targetContains: "locks"),
                    ]))
                #expect(throws: ContingencyError.self) { try lease.confirm() }
                try proxy.set(FaultProxy.Faults())
                lease.release()
                let next = try await Lease.acquire("store", storage: storage, job: "two", ttl: 60, timeout: 0)
                #expect(next.token == 2, "released at once, not left to LOCK_TTL")
                next.release()
            }
        }
    }

    @Test("a listing of several pages retries each page: one 503 per page lists it with S3_RETRIES=1")
    func listingRetriesEachPage() async throws {
        try await TestBucket.with { bucket in
            try await FaultProxy.with(upstream: bucket.moto.endpoint) { proxy in
                let log = LogCollector()
                let registry = PrometheusCollectorRegistry()
                let opened = try Self.open(bucket, proxy, retries: 1, log: log, registry: registry)
                for name in ["a.json", "b.json"] { try opened.put(key: name, data: [1]) }
                // The same bucket, one key per page: two pages.
                let bare = try #require((opened as? RetryingStorage)?.base as? S3Storage)
                let storage = RetryingStorage(
                    S3Storage(client: bare.client, listPageSize: 1), retries: 1, logger: log.logger)
                let paged = PrometheusCollectorRegistry()
                storage.countRetries(in: PrometheusMetricsFactory(registry: paged))
                #expect(try storage.list(folder: "").map(\.name).sorted() == ["a.json", "b.json"])
                let pages = try proxy.stats().requests
                try proxy.set(
                    FaultProxy.Faults([
                        // The first page's first attempt, then the second page's (the only one with a token).
                        .status(503, count: 1, method: "GET", targetContains: "list-type"),
                        .status(503, count: 1, method: "GET", targetContains: "continuation-token"),
                    ]))
                let listed = Result { try storage.list(folder: "") }
                #expect(try listed.get().map(\.name).sorted() == ["a.json", "b.json"], "\(listed)")
                #expect(try proxy.stats().faultsInjected == 2)
                #expect(try proxy.stats().requests - pages == 4, "each page sent twice, none from the start again")
                #expect(try Self.retries(paged) == 2, "each retry counted once")
            }
        }
    }

    @Test("a metrics file published twice, the second write's answer lost, counts two runs, not three")
    func metricsFileLostAnswer() async throws {
        try await TestBucket.with { bucket in
            try await FaultProxy.with(upstream: bucket.moto.endpoint) { proxy in
                let registry = PrometheusCollectorRegistry()
                let storage = try Self.open(bucket, proxy, log: LogCollector(), registry: registry)
                let logger = Logger(label: "test")
                let file = MetricsFile(job: "backup", families: [.counter("runs_total", "Runs.", [([], 1)])])
                try file.publish(to: storage, logger: logger)
                try proxy.set(
                    FaultProxy.Faults([
                        .cutAfter(bytes: 1 << 20, of: .request, count: 1, method: "PUT", targetContains: ".prom")
                    ]))
                try file.publish(to: storage, logger: logger)
                #expect(try proxy.stats().faultsInjected == 1)
                try proxy.set(FaultProxy.Faults())
                let stored = try #require(try storage.read(key: MetricsFile.key(job: "backup")))
                let text = String(decoding: stored.data, as: UTF8.self)
                #expect(text.contains("\nruns_total 2\n"), "\(text)")
            }
        }
    }
}
