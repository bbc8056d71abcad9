import BackupCore
import CoreMetrics
import Foundation
import Logging

/// Any store, with each operation that meets a transient fault (a `TransientStoreFault` its store threw after one
/// attempt) tried again, `retries` times, with exponential backoff and full jitter, each retry logged and counted
/// in `contingency_store_retries_total{store}` (see `RetryPolicy`). One decorator for every kind of store, as
/// restic wraps its backends: `S3Storage.open` wraps every bucket in one. A volume needs none: its operations are
/// system calls on a mounted file system, which either succeed or fail for a reason another try does not cure
/// (permission, disk full, I/O error); NFS retries its own requests below the file system.
///
/// What is repeated is the whole operation, so its request is signed anew and sent again with the same content:
/// a put, a create or a replace that reached the store but whose answer was lost is then refused (the key exists,
/// the version moved on) and answers nil, exactly as when the bucket retried the request itself; the leases and
/// requests recognise such a write as their own by reading it back (`Lease`, `RequestBoard`). A store throws
/// the fault only from operations whose repetition means the same (see `Storage`); the streams are not wrapped:
/// a writer fed by pg_dump cannot be rewound, so the store retries what is in hand (a part, a range) itself.
///
/// Cancellation: a transfer of data (`openReader`, `list`, and `makeWriter`, which starts an upload a cancelled
/// job will not finish) stops waiting for its next attempt once the calling task is cancelled (SIGTERM), and
/// throws `.cancelled`. Every other operation is a small request retried to its end even then: a cancelled job's
/// clean-up is made of them (renewing, confirming and releasing its lease, which reads it back after a lost
/// answer; deleting an archive it did not publish), and a read given up there would pass for a lease removed.
///
/// With `MeteredStorage`, the metered store wraps this one, never the reverse: an operation is then counted and
/// timed once, however many attempts it took (its duration includes the waits), and its retries are counted
/// apart, by this decorator's `countRetries(in:)`.
public struct RetryingStorage: Storage {
    public let base: any Storage
    private let policy: RetryPolicy

    /// `retries`: how many times an operation is tried again after a transient fault (`S3_RETRIES`).
    public init(_ base: any Storage, retries: Int, logger: Logger?) {
        // Wrapping twice would retry each attempt's retries.
        self.base = (base as? RetryingStorage)?.base ?? base
        policy = RetryPolicy(retries: retries, logger: logger)
    }

    public var description: String { base.description }
    public var kind: StoreKind { base.kind }
    public var localFolder: String? { base.localFolder }
    public var localStaging: LocalStaging? { base.localStaging }

    public func makeWriter(key: String) throws -> any ObjectWriter {
        try transferring { try base.makeWriter(key: key) }
    }

    public func openReader(key: String) throws -> (any ObjectReader)? {
        try transferring { try base.openReader(key: key) }
    }

    public func read(key: String) throws -> StoredObject? {
        try toItsEnd { try base.read(key: key) }
    }

    public func put(key: String, data: [UInt8]) throws {
        try toItsEnd { try base.put(key: key, data: data) }
    }

    public func create(key: String, data: [UInt8]) throws -> String? {
        try toItsEnd { try base.create(key: key, data: data) }
    }

    public func replace(key: String, data: [UInt8], ifMatch etag: String) throws -> String? {
        try toItsEnd { try base.replace(key: key, data: data, ifMatch: etag) }
    }

    @discardableResult
    public func delete(key: String, ifMatch etag: String?) throws -> Bool {
        try toItsEnd { try base.delete(key: key, ifMatch: etag) }
    }

    public func list(folder: String) throws -> [ObjectInfo] {
        try transferring { try base.list(folder: folder) }
    }

    public func availableBytes() throws -> Int64? {
        try toItsEnd { try base.availableBytes() }
    }

    public func currentTime() throws -> Date {
        try toItsEnd { try base.currentTime() }
    }

    public func abortInterruptedUploads(named isOurs: (String) -> Bool) throws -> Int {
        try toItsEnd { try base.abortInterruptedUploads(named: isOurs) }
    }

    /// Counts this decorator's retries in `factory`, and the store's own (the requests it retries itself).
    public func countRetries(in factory: any MetricsFactory) {
        policy.countRetries(in: factory, store: kind)
        base.countRetries(in: factory)
    }

    /// A transfer of data: retried until the calling task is cancelled.
    private func transferring<T>(_ operation: () throws -> T) throws -> T {
        try policy.run(stoppingWhen: RetryPolicy.whenTaskCancelled, operation)
    }

    /// A small request (a write, a small object's read, the store's clock): retried to its end, even in a
    /// cancelled task.
    private func toItsEnd<T>(_ operation: () throws -> T) throws -> T {
        try policy.run(stoppingWhen: { false }, operation)
    }
}
