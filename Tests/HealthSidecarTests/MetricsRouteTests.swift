import BackupCore
import BackupKit
import BackupStorage
import CoreMetrics
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Synchronization
import TestSupport
import Testing

@testable import HealthSidecar

/// `GET /metrics` in process (`app.test(.router)`, the application the executable runs): the API counter's
/// labels, the jobs' files merged (a bad one skipped and named), the store's gauges over forged manifests in a
/// real volume, and a scrape that does not wait for a store that does not answer. The live process under
/// promtool and a real Prometheus is in BackupIntegrationTests (MetricsScrapeTests).
@Suite("Sidecar /metrics")
struct MetricsRouteTests {
    static let token = "0123456789abcdef0123456789abcdef"
    static let tokenHeader = HTTPField.Name("X-API-Token")!

    /// A logger whose lines the test can read.
    final class LogCapture: Sendable {
        private let lines = Mutex<[String]>([])
        var text: String { lines.withLock { $0.joined(separator: "\n") } }

        var logger: Logger {
            var logger = Logger(label: "metrics-test") { _ in Handler(capture: self) }
            logger.logLevel = .warning
            return logger
        }

        struct Handler: LogHandler {
            let capture: LogCapture
            var logLevel: Logger.Level = .warning
            var metadata: Logger.Metadata = [:]
            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }
            func log(event: LogEvent) { capture.lines.withLock { $0.append("\(event.message)") } }
        }
    }

    static func configuration(store: TemporaryDirectory) -> SidecarConfiguration {
        var configuration = SidecarConfiguration(
            health: HealthConfiguration(url: "http://127.0.0.1:9/healthz", timeoutSeconds: 5),
            store: StoreConfiguration(backupDirectory: store.path, prefix: "visual_backup"), intervalSeconds: 60,
            failureThreshold: 3, sidecarID: "metrics-test", bind: "127.0.0.1", port: 0, livenessFile: "")
        configuration.api = APIConfiguration(token: token)
        return configuration
    }

    static func scrape(_ client: any TestClientProtocol) async throws -> (text: String, families: [MetricFamily]) {
        try await client.execute(uri: "/metrics", method: .get) { response in
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/plain; version=0.0.4; charset=utf-8")
            let text = String(decoding: response.body.readableBytesView, as: UTF8.self)
            return (text, try PrometheusText.parse(text))
        }
    }

    static func family(_ families: [MetricFamily], _ name: String) -> MetricFamily? {
        families.first { $0.name == name }
    }

    @Test("API requests are counted by route pattern: 50 random file names are one series, unknown paths 'unmatched'")
    func apiRequestLabels() async throws {
        let store = try TemporaryDirectory()
        defer { store.remove() }
        let logs = LogCapture()
        let context = try SidecarContext(
            configuration: Self.configuration(store: store), storage: try VolumeStorage(root: store.path),
            logger: logs.logger)
        try await buildApplication(context).test(.router) { client in
            var names: [String] = []
            for _ in 0..<50 {
                let name = "visual_backup_\(UUID().uuidString.lowercased()).tar.gz"
                names.append(name)
                try await client.execute(
                    uri: "/api/backups/\(name)", method: .delete, headers: [Self.tokenHeader: Self.token]
                ) { _ in }
            }
            for _ in 0..<10 {
                try await client.execute(
                    uri: "/api/\(UUID().uuidString)/x", method: .get, headers: [Self.tokenHeader: Self.token]
                ) { _ in }
            }
            // Refused by the gate: counted too, under the route they asked for.
            try await client.execute(uri: "/api/backups", method: .get, headers: [Self.tokenHeader: "wrong"]) { _ in }
            let (text, families) = try await Self.scrape(client)
            let requests = try #require(Self.family(families, SidecarMetrics.apiRequests), "\(text)")
            #expect(requests.kind == .counter)
            let byRoute = Dictionary(grouping: requests.samples) { $0.labelDictionary["route"] ?? "" }
            #expect(
                Set(byRoute.keys) == ["/api/backups/:filename", "unmatched", "/api/backups"],
                "\(requests.samples)")
            let deletes = try #require(byRoute["/api/backups/:filename"])
            #expect(deletes.count == 1 && deletes.first?.value == 50, "\(deletes)")
            #expect(byRoute["unmatched"]?.count == 1 && byRoute["unmatched"]?.first?.value == 10)
            #expect(byRoute["/api/backups"]?.first?.labelDictionary["status"] == "401")
            #expect(!names.contains { text.contains($0) })
            // /metrics and /healthz are not the API's.
            #expect(!text.contains("route=\"/metrics\""))
        }
    }

    @Test("the jobs' files are merged into the scrape; a malformed one is skipped and named in a warning")
    func malformedFile() async throws {
        let store = try TemporaryDirectory()
        defer { store.remove() }
        let folder = store.appending(MetricsFile.folder, isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data(
            """
            # HELP contingency_backup_runs_total Backup runs by result.
            # TYPE contingency_backup_runs_total counter
            contingency_backup_runs_total{result="success"} 3
            contingency_backup_runs_total{result="failure"} 1

            """.utf8
        ).write(to: folder.appendingPathComponent("backup.prom"))
        try Data(
            """
            # TYPE contingency_cleanup_success gauge
            contingency_cleanup_success{job="cleanup" 1
            contingency_cleanup_deleted 2

            """.utf8
        ).write(to: folder.appendingPathComponent("cleanup.prom"))
        let logs = LogCapture()
        let context = try SidecarContext(
            configuration: Self.configuration(store: store), storage: try VolumeStorage(root: store.path),
            logger: logs.logger)
        try await buildApplication(context).test(.router) { client in
            let (text, families) = try await Self.scrape(client)
            let runs = try #require(Self.family(families, "contingency_backup_runs_total"), "\(text)")
            #expect(runs.value(["result": "success"]) == 3 && runs.value(["result": "failure"]) == 1)
            #expect(!text.contains("contingency_cleanup"), "\(text)")
            #expect(
                logs.text.contains(".contingency/metrics/cleanup.prom is not in Prometheus' text format"),
                "\(logs.text)")
            // The sidecar's own families are there beside it.
            #expect(Self.family(families, "contingency_health_probes_total") != nil, "\(text)")
            #expect(Self.family(families, "contingency_webhook_failures_total")?.samples.count == 3, "\(text)")
        }
    }

    /// A manifest for the store gauges' test: created at `created`, `size` bytes, completed `took` seconds later.
    @Test("a file in the store cannot stand in for the store's own gauges or the registry's, even when they are absent")
    func forgedFamilies() async throws {
        let store = try TemporaryDirectory()
        defer { store.remove() }
        let folder = store.appending(MetricsFile.folder, isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        // No backup in the store: no last success of its own. A forged file says 2100.
        try Data(
            """
            contingency_backup_last_success_timestamp_seconds 4102444800
            contingency_backup_last_verified_timestamp_seconds 4102444800
            contingency_health_consecutive_failures 0
            contingency_api_requests_total{route="/x",status="200"} 1
            contingency_forged_but_harmless 1

            """.utf8
        ).write(to: folder.appendingPathComponent("a.prom"))
        let context = try SidecarContext(
            configuration: Self.configuration(store: store), storage: try VolumeStorage(root: store.path),
            logger: Logger(label: "metrics-test"))
        try await buildApplication(context).test(.router) { client in
            let (text, _) = try await Self.scrape(client)
            #expect(!text.contains("4102444800"), "\(text)")
            #expect(!text.contains("route=\"/x\""), "\(text)")
            #expect(text.contains("contingency_forged_but_harmless 1"), "a family of its own is served: \(text)")
        }
    }

    @Test("twenty scrapes at once read the store's files once, not twenty times")
    func scrapesShareOneReading() async throws {
        let store = try TemporaryDirectory()
        defer { store.remove() }
        let context = try SidecarContext(
            configuration: Self.configuration(store: store), storage: try VolumeStorage(root: store.path),
            logger: Logger(label: "metrics-test"))
        func lists() -> Double {
            (try? PrometheusText.parse(context.metrics.registry.emitToString()))?
                .first { $0.name == "contingency_store_requests_total" }?
                .samples.filter { $0.labelDictionary["operation"] == "list" }.map(\.value).reduce(0, +) ?? 0
        }
        let before = lists()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<20 { group.addTask { _ = await MetricsScrape.families(context) } }
        }
        // One reading of the files (one listing) and one of the store's gauges (one per store), whatever the
        // number of scrapes; a few more if the first ended before the last began.
        #expect(lists() - before <= 6, "\(lists() - before) listings for 20 scrapes")
        #expect(lists() - before >= 2)
    }

    static func manifest(
        created: Date, size: Int64, took: TimeInterval?, kind: BackupKind? = nil, verified: Manifest.Verification? = nil
    ) -> Manifest {
        var metadata = BackupMetadata(
            producer: "backup-job test", timestamp: "", created: created, database: "visual", version: nil,
            nodeVersion: nil, pgDumpVersion: "15", serverVersion: "15", hostname: "test", compression: .gzip,
            members: [], uploads: nil, missing: [])
        metadata.kind = kind
        return Manifest(
            metadata: metadata,
            archive: .init(name: "archive", size: size, sha256: String(repeating: "0", count: 64), encrypted: false),
            verified: verified, completed: took.map { created.addingTimeInterval($0) })
    }

    /// Writes a backup (an archive, and its manifest unless nil) named for `date` into `folder`.
    static func write(_ date: String, _ manifest: Manifest?, in folder: TemporaryDirectory) throws {
        let name = "visual_backup_\(date).tar.gz"
        try Data("archive".utf8).write(to: folder.appending(name))
        if let manifest {
            try ContingencyJSON.encoder().encode(manifest).write(to: folder.appending(name + ".json"))
        }
    }

    static func date(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }

    @Test(
        "the store's gauges: newest ordinary backup (safety, future and incomplete ones passed over), the one before, the last passing drill"
    )
    func storeGauges() async throws {
        let store = try TemporaryDirectory()
        defer { store.remove() }
        let january = Self.date("2026-01-01T00:00:00Z")
        let february = Self.date("2026-02-01T00:00:00Z")
        try Self.write(
            "2026-01-01_00-00-00",
            Self.manifest(
                created: january, size: 100, took: 30,
                verified: .init(at: Self.date("2026-01-02T00:00:00Z"), ok: true, detail: "drill passed")),
            in: store)
        try Self.write(
            "2026-01-15_00-00-00",
            Self.manifest(
                created: Self.date("2026-01-15T00:00:00Z"), size: 150, took: 30,
                verified: .init(at: Self.date("2026-01-20T00:00:00Z"), ok: false, detail: "drill failed")),
            in: store)
        try Self.write("2026-02-01_00-00-00", Self.manifest(created: february, size: 300, took: 60), in: store)
        try Self.write("2026-02-15_00-00-00", nil, in: store)  // interrupted: no manifest
        try Self.write(
            "2026-03-01_00-00-00",
            Self.manifest(created: Self.date("2026-03-01T00:00:00Z"), size: 999, took: 5, kind: .safety), in: store)
        try Self.write(
            "2099-01-01_00-00-00", Self.manifest(created: Self.date("2099-01-01T00:00:00Z"), size: 5, took: 5),
            in: store)
        let context = try SidecarContext(
            configuration: Self.configuration(store: store), storage: try VolumeStorage(root: store.path),
            logger: LogCapture().logger)
        try await buildApplication(context).test(.router) { client in
            let (text, families) = try await Self.scrape(client)
            func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
                Self.family(families, name)?.value(labels)
            }
            #expect(value(StoreMetrics.backups, ["store": "volume"]) == 5, "\(text)")
            #expect(value(StoreMetrics.lastSize) == 300, "\(text)")
            #expect(value(StoreMetrics.previousSize) == 150, "\(text)")
            #expect(value(StoreMetrics.lastDuration) == 60, "\(text)")
            #expect(value(StoreMetrics.lastSuccess) == february.timeIntervalSince1970 + 60, "\(text)")
            #expect(value(StoreMetrics.lastVerified) == Self.date("2026-01-02T00:00:00Z").timeIntervalSince1970)
            #expect((value(StoreMetrics.freeBytes, ["store": "volume"]) ?? 0) > 0, "\(text)")
            #expect(Self.family(families, StoreMetrics.freeBytes)?.samples.count == 1)
        }
    }

    /// A store whose listing waits until the test opens its gate: a bucket that does not answer.
    final class GatedStorage: Storage, @unchecked Sendable {
        let inner: VolumeStorage
        /// Guards `isOpen`.
        private let condition = NSCondition()
        private var isOpen = false

        init(_ inner: VolumeStorage) { self.inner = inner }

        func open() {
            condition.lock()
            isOpen = true
            condition.broadcast()
            condition.unlock()
        }

        var description: String { "gated \(inner)" }
        func list(folder: String) throws -> [ObjectInfo] {
            condition.lock()
            while !isOpen { condition.wait() }
            condition.unlock()
            return try inner.list(folder: folder)
        }
        func makeWriter(key: String) throws -> any ObjectWriter { try inner.makeWriter(key: key) }
        func openReader(key: String) throws -> (any ObjectReader)? { try inner.openReader(key: key) }
        func read(key: String) throws -> StoredObject? { try inner.read(key: key) }
        func put(key: String, data: [UInt8]) throws { try inner.put(key: key, data: data) }
        func create(key: String, data: [UInt8]) throws -> String? { try inner.create(key: key, data: data) }
        func replace(key: String, data: [UInt8], ifMatch etag: String) throws -> String? {
            try inner.replace(key: key, data: data, ifMatch: etag)
        }
        func delete(key: String, ifMatch etag: String?) throws -> Bool { try inner.delete(key: key, ifMatch: etag) }
        func availableBytes() throws -> Int64? { nil }
        func currentTime() throws -> Date { try inner.currentTime() }
        var kind: StoreKind { .bucket }
        var localFolder: String? { nil }
        var localStaging: LocalStaging? { nil }
        func abortInterruptedUploads(named isOurs: (String) -> Bool) throws -> Int { 0 }
        func countRetries(in factory: any MetricsFactory) {}
    }

    @Test(
        "a bucket that does not answer: the scrape comes back by its deadline with the volume's gauges and says what it left out"
    )
    func slowBucket() async throws {
        let volume = try TemporaryDirectory()
        let bucketFolder = try TemporaryDirectory()
        defer {
            volume.remove()
            bucketFolder.remove()
        }
        let created = Self.date("2026-01-01T00:00:00Z")
        try Self.write("2026-01-01_00-00-00", Self.manifest(created: created, size: 100, took: 10), in: volume)
        try Self.write("2026-01-01_00-00-00", Self.manifest(created: created, size: 100, took: 10), in: bucketFolder)
        let primary = try VolumeStorage(root: volume.path)
        let bucket = GatedStorage(try VolumeStorage(root: bucketFolder.path))
        defer { bucket.open() }
        let logs = LogCapture()
        let context = SidecarContext(
            configuration: Self.configuration(store: volume),
            stores: Stores(primary: primary, copy: bucket, staging: primary.staging), logger: logs.logger)
        // The scrape answers while the bucket's listing is still held: it did not wait for it. (The deadline is the
        // volume's to meet on a loaded machine; the held bucket never answers, whatever its length.)
        let families = await MetricsScrape.families(context, deadline: .seconds(5))
        #expect(Self.family(families, StoreMetrics.backups)?.value(["store": "volume"]) == 1)
        #expect(Self.family(families, StoreMetrics.backups)?.value(["store": "bucket"]) == nil)
        #expect(Self.family(families, StoreMetrics.lastSize) == nil)
        #expect(logs.text.contains("served without contingency_backups{store=\"bucket\"}"), "\(logs.text)")
        #expect(Self.family(families, "contingency_health_probes_total") != nil)
        // Once the bucket answers, the reading that went on serves the next scrape in full.
        bucket.open()
        try await eventually(timeout: .seconds(30), "a complete scrape") {
            let families = await MetricsScrape.families(context, deadline: .seconds(1))
            return Self.family(families, StoreMetrics.backups)?.value(["store": "bucket"]) == 1
                && Self.family(families, StoreMetrics.lastSize)?.value() == 100
        }
    }
}
