import BackupCore
import BackupStorage
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

    @Test("in a cancelled task a read stops waiting for its next attempt, while a write is retried to its end")
    func cancellation() async throws {
        try await TestBucket.with { bucket in
            try await FaultProxy.with(upstream: bucket.moto.endpoint) { proxy in
                let registry = PrometheusCollectorRegistry()
                // 30 retries: the backoff grows to 8 s, minutes in all.
                let storage = try Self.open(bucket, proxy, retries: 30, log: LogCollector(), registry: registry)
                try storage.put(key: "kept.json", data: [1])
                try proxy.set(FaultProxy.Faults(status: 503, count: nil, method: "GET"))
                let reading = Task.detached { () throws -> StoredObject? in try storage.read(key: "kept.json") }
                try await eventually(timeout: .seconds(60), "the read to meet five faults") {
                    try proxy.stats().faultsInjected >= 5
                }
                let cancelled = ContinuousClock.now
                reading.cancel()
                let error = try await #require(throws: ContingencyError.self) { try await reading.value }
                #expect(ContinuousClock.now - cancelled < .seconds(5), "stopped waiting at once")
                #expect(error.isCancellation, "\(error)")
                let key = "s3://\(bucket.name)/\(bucket.prefix)/kept.json"
                #expect(error.message.contains("GET \(key) not retried: the job was cancelled"), "\(error)")
                #expect(try proxy.stats().faultsInjected < 31)

                // A write in a cancelled task (a job's clean-up: its lease released, its archive deleted) goes on.
                try proxy.set(FaultProxy.Faults([.status(503, count: 3, method: "PUT")]))
                let writing = Task.detached { () throws -> Bool in
                    while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(10)) }
                    try storage.put(key: "released.json", data: [2])
                    return Task.isCancelled
                }
                writing.cancel()
                #expect(try await writing.value, "the put ran in a cancelled task")
                try proxy.set(FaultProxy.Faults())
                #expect(try storage.read(key: "released.json")?.data == [2])
            }
        }
    }
}
