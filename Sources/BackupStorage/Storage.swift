import BackupCore
import CoreMetrics
import Foundation

/// Where backups and coordination objects live: a shared volume, or (later) an S3-compatible bucket.
/// Keys are relative, `/`-separated paths (`visual_backup_….tar.gz`, `.contingency/locks/store.lock`).
///
/// The contract every implementation keeps, and that the conformance tests check:
/// - **Atomic publish.** An object written through `makeWriter` is invisible under its key until `commit()`
///   returns; a writer that is aborted, or whose process dies, leaves nothing under the key. `put` is the
///   same for small objects. A reader sees either the old object or the new one, never a mix.
/// - **Durability.** When `commit()` or `put` returns, the object survives a crash of this machine.
/// - **Listing.** `list` returns the committed objects directly under a folder, in no particular order; an
///   object committed before the call started is listed.
/// - **Conditional create and compare-and-swap.** `create(ifAbsent:)` succeeds for exactly one of any number
///   of concurrent callers; `replace(ifMatch:)` and `delete(ifMatch:)` succeed only when the object's
///   version is still the one given. Versions (`ETag`s) change whenever content changes.
/// - **The store's clock.** `currentTime()` and `StoredObject.modified` are read from the store's own clock
///   (the file system's, the bucket server's), never this host's: the hosts that share a store may disagree
///   about the time, but they all see the same store. Leases measure expiry on it.
/// - **Errors.** A missing object is `nil` / `false`, never an error. Anything else (permission denied, disk
///   full, I/O error) throws a `ContingencyError` naming the store and key, never a secret; except a fault that
///   the same operation, tried again, may not meet (a reset connection, an overloaded server), which a store
///   may throw as a `TransientStoreFault` after one attempt, for `RetryingStorage` to retry. A store throws it
///   only from an operation that can be repeated whole with the same outcome, and retries the rest itself;
///   a conditional write (`create`, `replace`, `delete(ifMatch:)`) whose answer was lost is the exception its
///   caller must allow for: its repeat is refused, so nil / false may then mean that this very call wrote.
public protocol Storage: Sendable, CustomStringConvertible {
    /// Starts a new object under `key`; nothing is visible there until the writer commits.
    func makeWriter(key: String) throws -> any ObjectWriter
    /// Opens an object for streaming reads, or nil when it does not exist.
    func openReader(key: String) throws -> (any ObjectReader)?
    /// Reads a small object whole, with its version, or nil when it does not exist.
    func read(key: String) throws -> StoredObject?
    /// Publishes a small object atomically, replacing any previous one.
    func put(key: String, data: [UInt8]) throws
    /// Creates `key` only if it does not exist. Returns the new version, or nil when the key already existed.
    func create(key: String, data: [UInt8]) throws -> String?
    /// Replaces `key` only if its version is `etag`. Returns the new version, or nil when it changed or vanished.
    func replace(key: String, data: [UInt8], ifMatch etag: String) throws -> String?
    /// Deletes `key`; with `ifMatch`, only if its version is still that. Returns whether something was deleted.
    /// With `ifMatch`, false does not prove the object was left: a store that retries the operation whole
    /// (`RetryingStorage`) repeats it when the answer of a delete that took effect was lost, and the repeat finds
    /// nothing, so false may then mean deleted by this call. A caller that must know reads the key again.
    @discardableResult
    func delete(key: String, ifMatch etag: String?) throws -> Bool
    /// Committed objects directly under `folder` ("" for the top).
    func list(folder: String) throws -> [ObjectInfo]
    /// Bytes free for new objects, or nil where the notion does not apply (a bucket).
    func availableBytes() throws -> Int64?
    /// The store's current time, by its own clock: a volume reads the time its file system stamps on a file
    /// created now (on NFS, the server's), a bucket the `Date` of its server's answer (to the second). Objects'
    /// `modified` times come from the same clock, so durations between the two mean the same on every host.
    func currentTime() throws -> Date

    // What a store is and can do beyond the contract above, asked of the protocol rather than by downcasting to
    // a concrete store, so that a decorator (`MeteredStorage`) passes it through.

    /// A volume or a bucket: the name metrics, logs and the API give the store.
    var kind: StoreKind { get }
    /// The folder of a volume store; nil for a bucket.
    var localFolder: String? { get }
    /// The local folder for scratch files beside a volume store's objects (same file system, so a staged file
    /// is renamed into place); nil for a bucket.
    var localStaging: LocalStaging? { get }
    /// Aborts the uploads that runs which died left open, of the objects `isOurs` accepts by name; returns how
    /// many. A store whose writes leave nothing open (a volume) returns 0.
    func abortInterruptedUploads(named isOurs: (String) -> Bool) throws -> Int
    /// Counts, from now on, each retry of a transient fault in `factory`
    /// (`contingency_store_retries_total{store}`). A store that never retries (a volume) ignores it.
    func countRetries(in factory: any MetricsFactory)
}

/// A fault met by one attempt of a store operation that another attempt may not meet: a timeout, a cut
/// connection, HTTP 5xx, 429 or S3's SlowDown. Thrown by a store from an operation that can be repeated whole
/// (see `Storage`), retried by `RetryingStorage`; `exhausted(attempts:)` is the error once retries are spent.
public struct TransientStoreFault: Error, CustomStringConvertible, Sendable {
    /// What met the fault, naming the store and key: `GET s3://bucket/prefix/key`.
    public let operation: String
    /// The fault: `HTTP 503 SlowDown`, `Connection reset by peer`.
    public let fault: String
    /// What to check when the fault outlasts every retry.
    public let hint: String

    public init(operation: String, fault: String, hint: String) {
        self.operation = operation
        self.fault = fault
        self.hint = hint
    }

    public var description: String { "\(operation): \(fault)" }

    /// The error once `attempts` attempts have all met a transient fault, this one the last.
    public func exhausted(attempts: Int) -> ContingencyError {
        .failed("\(operation) failed \(attempts) times, the last with \(fault)", hint: hint)
    }
}

/// The two kinds of store.
public enum StoreKind: String, Sendable, CaseIterable {
    case volume
    case bucket
}

/// A small object read whole, with its version.
public struct StoredObject: Sendable {
    public let data: [UInt8]
    public let etag: String
    /// When the object was last written, by the store's clock (see `Storage.currentTime()`).
    public let modified: Date
    /// The store's time when it answered, where the read itself tells it (a bucket's `Date`), so that a lease
    /// is judged without asking again; nil where it does not (a volume: ask `currentTime()`).
    public let storeTime: Date?
    public init(data: [UInt8], etag: String, modified: Date, storeTime: Date? = nil) {
        self.data = data
        self.etag = etag
        self.modified = modified
        self.storeTime = storeTime
    }
}

/// One listed object.
public struct ObjectInfo: Sendable, Equatable {
    /// The full key.
    public let key: String
    /// The last path component of the key.
    public var name: String { String(key.split(separator: "/").last ?? Substring(key)) }
    public let size: Int64
    public let modified: Date
    public init(key: String, size: Int64, modified: Date) {
        self.key = key
        self.size = size
        self.modified = modified
    }
}

/// An object being written. Bytes go in through `write`; `commit` publishes, `abort` discards.
/// Dropping a writer without committing aborts it.
public protocol ObjectWriter: ByteSink {
    /// Makes the object durable, runs `check` (the lease's fencing check), and only if it passes makes the
    /// object visible under its key. A slow flush therefore cannot outlast the lease unnoticed.
    func commit(beforePublishing check: () throws -> Void) throws
    /// Discards everything written. Safe to call more than once and after a failed commit.
    func abort()
}

/// An object being read.
public protocol ObjectReader: ByteSource {
    var size: Int64 { get }
}
