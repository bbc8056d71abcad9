import BackupCore
import BackupKit
import BackupStorage
import Foundation
import Prometheus
import Testing
import TestSupport

/// The store decorator that counts and times every operation (`MeteredStorage`), over real stores (a volume, a
/// bucket on moto behind the fault proxy), recording into swift-prometheus' registry, whose scrape promtool reads.
@Suite("Store metrics")
struct MeteredStorageTests {
    /// The registry's scrape, with the catalog's help, as the sidecar serves it.
    static func scrape(_ registry: PrometheusCollectorRegistry) throws -> [MetricFamily] {
        MetricCatalog.documented(try PrometheusText.parse(registry.emitToString()))
    }

    static func value(_ families: [MetricFamily], _ name: String, _ labels: [String: String]) -> Double? {
        families.first { $0.name == name }?.value(labels)
    }

    @Test("a metered volume keeps the Storage contract, passes its capabilities through, and counts every operation")
    func volume() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let registry = PrometheusCollectorRegistry()
        let volume = try VolumeStorage(root: folder.path)
        let storage = MeteredStorage(volume, factory: PrometheusMetricsFactory(registry: registry))
        try await StorageConformance.check(storage)
        #expect(storage.kind == .volume && storage.localFolder == folder.path)
        #expect(storage.localStaging?.folder == volume.staging.folder)
        #expect(MeteredStorage(storage, factory: PrometheusMetricsFactory(registry: registry)).base is VolumeStorage, "never wrapped twice")

        // An error is counted as one: a file stands where a folder must be made.
        try Data("x".utf8).write(to: folder.url.appendingPathComponent("blocked"))
        #expect(throws: (any Error).self) { try storage.put(key: "blocked/object", data: [1]) }

        let families = try Self.scrape(registry)
        let requests = "contingency_store_requests_total"
        #expect((Self.value(families, requests, ["store": "volume", "operation": "create", "result": "ok"]) ?? 0) >= 1)
        #expect((Self.value(families, requests, ["store": "volume", "operation": "list", "result": "ok"]) ?? 0) >= 1)
        #expect(Self.value(families, requests, ["store": "volume", "operation": "put", "result": "error"]) == 1)
        #expect((Self.value(families, "contingency_store_bytes_total", ["store": "volume", "direction": "written"]) ?? 0) >= 11)
        #expect((Self.value(families, "contingency_store_bytes_total", ["store": "volume", "direction": "read"]) ?? 0) >= 11)
        let durations = try #require(families.first { $0.name == "contingency_store_request_duration_seconds" })
        #expect(durations.kind == .histogram)
        #expect(durations.samples.contains { $0.name.hasSuffix("_count") && $0.labelDictionary["operation"] == "write" })
        #expect(families.first { $0.name == "contingency_store_retries_total" } == nil, "a volume never retries")

        let promtool = try await ProcessRunner.run(
            "promtool", ["check", "metrics"], stdin: Data(PrometheusText.render(families).utf8))
        #expect(promtool.succeeded && promtool.stdout.isEmpty && promtool.stderr.isEmpty, "\(promtool)")
    }

    @Test("a metered bucket keeps the Storage contract and counts the retries of a 503 burst")
    func bucketRetries() async throws {
        try await TestBucket.with { bucket in
            try await FaultProxy.with(upstream: bucket.moto.endpoint) { proxy in
                let registry = PrometheusCollectorRegistry()
                let storage = MeteredStorage(
                    try bucket.storage(endpoint: proxy.endpoint), factory: PrometheusMetricsFactory(registry: registry))
                #expect(storage.kind == .bucket && storage.localFolder == nil && storage.localStaging == nil)
                try await StorageConformance.check(storage)
                try storage.put(key: "object.json", data: Array("{}".utf8))
                try proxy.set(FaultProxy.Faults([.status(503, count: 2, method: "GET", targetContains: "object.json")]))
                #expect(try storage.read(key: "object.json")?.data == Array("{}".utf8))
                try proxy.set(FaultProxy.Faults())
                #expect(try storage.abortInterruptedUploads { _ in true } == 0)

                let families = try Self.scrape(registry)
                #expect(Self.value(families, "contingency_store_retries_total", ["store": "bucket"]) == 2)
                let requests = "contingency_store_requests_total"
                #expect((Self.value(families, requests, ["store": "bucket", "operation": "read", "result": "ok"]) ?? 0) >= 1)
                #expect(Self.value(families, requests, ["store": "bucket", "operation": "abort_uploads", "result": "ok"]) == 1)
                let promtool = try await ProcessRunner.run(
                    "promtool", ["check", "metrics"], stdin: Data(PrometheusText.render(families).utf8))
                #expect(promtool.succeeded && promtool.stdout.isEmpty && promtool.stderr.isEmpty, "\(promtool)")

                // A part that cannot be uploaded fails the stream: one failed write, whether the writer or its
                // commit reports it.
                try proxy.set(FaultProxy.Faults([.status(503, count: nil, method: "PUT", targetContains: "partNumber=1")]))
                let writer = try storage.makeWriter(key: "large.bin")
                let chunk = [UInt8](repeating: 7, count: 1 << 20)
                #expect(throws: (any Error).self) {
                    for _ in 0..<12 { try chunk.withUnsafeBytes { try writer.write($0) } }
                    try writer.commit {}
                }
                writer.abort()
                try proxy.set(FaultProxy.Faults())
                let after = try Self.scrape(registry)
                let failedWrites = ["store": "bucket", "operation": "write", "result": "error"]
                #expect(
                    Self.value(after, requests, failedWrites) == (Self.value(families, requests, failedWrites) ?? 0) + 1,
                    "the contract's checks fail commits of their own")
                #expect(try bucket.moto.openMultipartUploads(bucket: bucket.name) == 0)
            }
        }
    }
}
