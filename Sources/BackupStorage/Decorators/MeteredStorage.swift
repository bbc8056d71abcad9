import BackupCore
import CoreMetrics
import Foundation

/// Any store, with every operation counted and timed and every byte streamed counted, through the swift-metrics
/// API into the factory it is given (the sidecar's Prometheus registry; elsewhere whatever the process
/// bootstrapped, by default nothing). One decorator for every kind of store, as restic wraps its backends:
/// the stores themselves know nothing of metrics.
///
/// - `contingency_store_requests_total{store, operation, result}`: operations, `result` "ok" or "error" (a
///   missing object or a refused condition is an answer, "ok"; only a thrown error is "error").
/// - `contingency_store_request_duration_seconds{store, operation}`: their durations (a timer: a histogram in
///   Prometheus).
/// - `contingency_store_retries_total{store}`: transient faults retried, counted by whatever retries them below
///   (`RetryingStorage`, which a bucket is opened in, and the requests the bucket retries itself; see
///   `S3Client`), through `countRetries(in:)`. Retries are below this decorator, never above: an operation is
///   measured once, however many attempts it took.
/// - `contingency_store_bytes_total{store, direction}`: bytes streamed through writers ("written") and readers
///   ("read"), and small objects read and put whole.
///
/// Operations are the protocol's: `write` (an object's commit, or a failed write of its stream: a bucket
/// uploads parts as it goes), `open` (a writer started, a reader opened), `read` (a small object, or a failed
/// read of a stream), `put`, `create`, `replace`, `delete`, `list`, `free`, `time`, `abort_uploads`. A
/// cancelled job's interrupted operation counts as an error.
public struct MeteredStorage: Storage {
    public let base: any Storage
    private let factory: any MetricsFactory

    public init(_ base: any Storage, factory: any MetricsFactory) {
        // Wrapping twice would count everything twice.
        self.base = (base as? MeteredStorage)?.base ?? base
        self.factory = factory
        self.base.countRetries(in: factory)
    }

    public var description: String { base.description }
    public var kind: StoreKind { base.kind }
    public var localFolder: String? { base.localFolder }
    public var localStaging: LocalStaging? { base.localStaging }

    public func makeWriter(key: String) throws -> any ObjectWriter {
        MeteredWriter(base: try measure("open") { try base.makeWriter(key: key) }, storage: self)
    }

    public func openReader(key: String) throws -> (any ObjectReader)? {
        try measure("open") { try base.openReader(key: key) }.map { MeteredReader(base: $0, storage: self) }
    }

    public func read(key: String) throws -> StoredObject? {
        let object = try measure("read") { try base.read(key: key) }
        if let object { counter(bytes: "read").increment(by: object.data.count) }
        return object
    }

    public func put(key: String, data: [UInt8]) throws {
        try measure("put") { try base.put(key: key, data: data) }
        counter(bytes: "written").increment(by: data.count)
    }

    public func create(key: String, data: [UInt8]) throws -> String? {
        let etag = try measure("create") { try base.create(key: key, data: data) }
        if etag != nil { counter(bytes: "written").increment(by: data.count) }
        return etag
    }

    public func replace(key: String, data: [UInt8], ifMatch etag: String) throws -> String? {
        let replaced = try measure("replace") { try base.replace(key: key, data: data, ifMatch: etag) }
        if replaced != nil { counter(bytes: "written").increment(by: data.count) }
        return replaced
    }

    @discardableResult
    public func delete(key: String, ifMatch etag: String?) throws -> Bool {
        try measure("delete") { try base.delete(key: key, ifMatch: etag) }
    }

    public func list(folder: String) throws -> [ObjectInfo] { try measure("list") { try base.list(folder: folder) } }

    public func availableBytes() throws -> Int64? { try measure("free") { try base.availableBytes() } }

    public func currentTime() throws -> Date { try measure("time") { try base.currentTime() } }

    public func abortInterruptedUploads(named isOurs: (String) -> Bool) throws -> Int {
        try measure("abort_uploads") { try base.abortInterruptedUploads(named: isOurs) }
    }

    public func countRetries(in factory: any MetricsFactory) { base.countRetries(in: factory) }

    // MARK: - Recording

    /// Runs `body`, counting it as `operation` with its outcome and timing it.
    func measure<T>(_ operation: String, _ body: () throws -> T) throws -> T {
        let started = DispatchTime.now().uptimeNanoseconds
        let result: Result<T, any Error> = Result { try body() }
        let elapsed = DispatchTime.now().uptimeNanoseconds - started
        if case .failure = result { count(operation, failed: true) } else { count(operation, failed: false) }
        Timer(
            label: "contingency_store_request_duration_seconds",
            dimensions: [("store", kind.rawValue), ("operation", operation)], preferredDisplayUnit: .seconds,
            factory: factory
        ).recordNanoseconds(Int64(clamping: elapsed))
        return try result.get()
    }

    /// Counts one `operation`, ok or failed.
    func count(_ operation: String, failed: Bool) {
        Counter(
            label: "contingency_store_requests_total",
            dimensions: [("store", kind.rawValue), ("operation", operation), ("result", failed ? "error" : "ok")],
            factory: factory
        ).increment()
    }

    func counter(bytes direction: String) -> Counter {
        Counter(
            label: "contingency_store_bytes_total", dimensions: [("store", kind.rawValue), ("direction", direction)],
            factory: factory)
    }
}

/// A writer whose bytes are counted and whose commit is timed as the store's `write` operation.
final class MeteredWriter: ObjectWriter {
    private let base: any ObjectWriter
    private let storage: MeteredStorage
    private let bytes: Counter

    init(base: any ObjectWriter, storage: MeteredStorage) {
        self.base = base
        self.storage = storage
        bytes = storage.counter(bytes: "written")
    }

    func write(_ chunk: UnsafeRawBufferPointer) throws {
        do {
            try base.write(chunk)
        } catch {
            // A bucket uploads its parts while the stream is written: their failures are the write's.
            storage.count("write", failed: true)
            throw error
        }
        bytes.increment(by: chunk.count)
    }

    func commit(beforePublishing check: () throws -> Void) throws {
        try storage.measure("write") { try base.commit(beforePublishing: check) }
    }

    func abort() { base.abort() }
}

/// A reader whose bytes are counted.
final class MeteredReader: ObjectReader {
    private let base: any ObjectReader
    private let storage: MeteredStorage
    private let bytes: Counter

    init(base: any ObjectReader, storage: MeteredStorage) {
        self.base = base
        self.storage = storage
        bytes = storage.counter(bytes: "read")
    }

    var size: Int64 { base.size }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let count: Int
        do {
            count = try base.read(into: buffer)
        } catch {
            // A bucket's ranged reads happen while the stream is read: their failures are the read's.
            storage.count("read", failed: true)
            throw error
        }
        bytes.increment(by: count)
        return count
    }
}
