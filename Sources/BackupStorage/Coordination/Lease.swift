import BackupCore
import Foundation

/// What a lease object holds (`.contingency/locks/<name>.lock`).
public struct LeaseRecord: Codable, Sendable, Equatable {
    /// Unique per holder; the only identity that counts (pids and host names are reused by containers).
    public var owner: String
    public var job: String
    public var host: String
    public var pid: Int32
    public var acquired: Date
    public var renewed: Date
    public var expires: Date
    /// Grows by one at every takeover: a writer whose token is no longer current is fenced out.
    public var token: Int
    /// Set when the holder let go; the next holder takes over without waiting for expiry.
    public var released: Bool

    /// True once the holder stopped renewing for a whole lease time, or released it. Decided by lease time only.
    public func isFree(at now: Date) -> Bool { released || expires <= now }

    /// "backup-job (pid 1234 on host web-1, held for 2m 05s, expires in 40s, owner 3f2a…)"
    public func holderDescription(now: Date) -> String {
        let age = DurationFormat.string(seconds: now.timeIntervalSince(acquired))
        let remaining = DurationFormat.string(seconds: max(0, expires.timeIntervalSince(now)))
        return "\(job) (pid \(pid) on host \(host), held for \(age), lease expires in \(remaining) unless renewed, owner \(owner.prefix(8)))"
    }
}

/// An exclusive lease on a store-wide name, built only on the `Storage` contract (conditional create and
/// compare-and-swap), so it behaves the same on a volume and on a bucket.
///
/// The holder renews it every third of its TTL. If the holder dies, the lease expires and the next job takes
/// it over with a higher token. A holder that finds its renewal refused has lost the lease and must stop
/// before publishing anything: `confirm()` is that check.
public final class Lease: @unchecked Sendable {
    public let name: String
    public let key: String
    private let storage: any Storage
    private let ttl: TimeInterval
    // Guarded by `lock`: the renewal task and the job's own thread both touch them.
    private let lock = NSLock()
    private var record: LeaseRecord
    private var etag: String
    private var lost: ContingencyError?
    private var renewal: (any DispatchSourceTimer)?

    private init(name: String, key: String, storage: any Storage, ttl: TimeInterval, record: LeaseRecord, etag: String) {
        self.name = name
        self.key = key
        self.storage = storage
        self.ttl = ttl
        self.record = record
        self.etag = etag
    }

    deinit { renewal?.cancel() }

    public static func key(for name: String) -> String { ".contingency/locks/\(name).lock" }

    /// Takes the lease, waiting up to `timeout` seconds for a live holder to finish. Throws `.locked` naming the
    /// holder when it cannot. `onLost` runs (once) if a later renewal is refused.
    public static func acquire(
        _ name: String, storage: any Storage, job: String, ttl: Int, timeout: Int,
        onWait: @Sendable (LeaseRecord) -> Void = { _ in }, onLost: @escaping @Sendable (ContingencyError) -> Void = { _ in }
    ) async throws -> Lease {
        let key = key(for: name)
        let deadline = Date().addingTimeInterval(TimeInterval(timeout))
        let owner = UUID().uuidString.lowercased()
        var announced = false
        while true {
            try Task.checkCancellation()
            let now = Date()
            var record = LeaseRecord(
                owner: owner, job: job, host: ProcessInfo.processInfo.hostName, pid: getpid(), acquired: now,
                renewed: now, expires: now.addingTimeInterval(TimeInterval(ttl)), token: 1, released: false)
            if let current = try storage.read(key: key) {
                let holder = try decode(current.data, key: key, storage: storage)
                if holder.owner == owner {
                    // Our own create or takeover went through but its answer was lost (and the retry was refused).
                    return Lease(name: name, key: key, storage: storage, ttl: TimeInterval(ttl), record: holder, etag: current.etag)
                        .startingRenewal(onLost: onLost)
                }
                if holder.isFree(at: now) {
                    // The record is read from the store, which others may write: its token may be at the end.
                    let (next, overflow) = holder.token.addingReportingOverflow(1)
                    guard !overflow else {
                        throw ContingencyError.failed(
                            "the lease \(key) in \(storage) holds token \(holder.token), which cannot grow: this product did not write it",
                            hint: "delete \(storage)/\(key) once you are sure no job runs")
                    }
                    record.token = next
                    if let etag = try storage.replace(key: key, data: encode(record), ifMatch: current.etag) {
                        return Lease(name: name, key: key, storage: storage, ttl: TimeInterval(ttl), record: record, etag: etag)
                            .startingRenewal(onLost: onLost)
                    }
                    continue  // someone else took it over first: look again
                }
                if now >= deadline {
                    throw ContingencyError.locked(
                        "the store \(storage) is locked by \(holder.holderDescription(now: now))",
                        hint: timeout > 0
                            ? "waited \(timeout)s (LOCK_TIMEOUT); try again later"
                            : "wait for it to finish or set LOCK_TIMEOUT to wait; if its holder is gone, the lease expires by itself (LOCK_TTL), or delete \(storage)/\(key) once you are sure no job runs")
                }
                if !announced {
                    onWait(holder)
                    announced = true
                }
                let wait = min(max(0.05, holder.expires.timeIntervalSince(now)), 0.5, max(0.05, deadline.timeIntervalSince(now)))
                try await Task.sleep(for: .milliseconds(Int(wait * 1000)))
            } else if let etag = try storage.create(key: key, data: encode(record)) {
                return Lease(name: name, key: key, storage: storage, ttl: TimeInterval(ttl), record: record, etag: etag)
                    .startingRenewal(onLost: onLost)
            }
        }
    }

    /// Runs `body` with renewals held off, so it never interrupts one halfway (a renewal holds the store's
    /// guard for a moment). Used by test failpoints that stop the process.
    public func withRenewalsHeld(_ body: () -> Void) {
        lock.withLock { body() }
    }

    /// The current fencing token.
    public var token: Int { lock.withLock { record.token } }

    /// Renews now and throws if the lease was lost: call right before publishing or deleting anything.
    public func confirm() throws {
        try renew()
    }

    /// Extends the lease by a TTL with a compare-and-swap on its version. Refused when another holder took it.
    public func renew() throws {
        try lock.withLock {
            if let lost { throw lost }
            var next = record
            let now = Date()
            next.renewed = now
            next.expires = now.addingTimeInterval(ttl)
            guard let newTag = try storage.replace(key: key, data: Self.encode(next), ifMatch: etag) else {
                let stored = try? storage.read(key: key)
                let current = try? stored.map { try Self.decode($0.data, key: key, storage: storage) }
                if let stored, stored.data == Self.encode(next) {
                    // This very renewal was written, but its answer was lost and the retried write refused.
                    record = next
                    etag = stored.etag
                    return
                }
                let reason = ContingencyError.locked(
                    "lost the lease \(key) (token \(record.token)): "
                        + (current.map { "now held by \($0.holderDescription(now: now)) with token \($0.token)" }
                            ?? "it was removed"),
                    hint: "this run stopped renewing for longer than LOCK_TTL (paused or overloaded); it aborts without publishing")
                lost = reason
                throw reason
            }
            record = next
            etag = newTag
        }
    }

    /// Stops renewing and lets the next job in at once. Never touches a lease that another holder took over.
    public func release() {
        lock.withLock { renewal }?.cancel()
        lock.withLock {
            guard lost == nil else { return }
            var released = record
            released.released = true
            released.expires = Date()
            _ = try? storage.replace(key: key, data: Self.encode(released), ifMatch: etag)
        }
    }

    /// Renews every third of the TTL from a timer on its own dispatch queue, not from Swift's cooperative
    /// thread pool: the job's long synchronous work (compressing, hashing) occupies that pool's threads, and
    /// on a one-CPU container the renewal would otherwise wait behind it until the lease expired.
    private func startingRenewal(onLost: @escaping @Sendable (ContingencyError) -> Void) -> Lease {
        let interval = max(ttl / 3, 0.5)
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "contingency.lease.\(name)"))
        timer.schedule(deadline: .now() + interval, repeating: interval)
        timer.setEventHandler { [weak self] in
            guard let self else { return }
            do {
                try self.renew()
            } catch let error as ContingencyError where error.exitStatus == .locked {
                self.lock.withLock { self.renewal }?.cancel()
                onLost(error)
            } catch {
                // A transient store error: the next attempt may succeed before the lease runs out.
            }
        }
        lock.withLock { renewal = timer }
        timer.resume()
        return self
    }

    static func encode(_ record: LeaseRecord) -> [UInt8] {
        Array((try? ContingencyJSON.encoder().encode(record)) ?? Data())
    }

    static func decode(_ data: [UInt8], key: String, storage: any Storage) throws -> LeaseRecord {
        do {
            return try ContingencyJSON.decoder().decode(LeaseRecord.self, from: Data(data))
        } catch {
            throw ContingencyError.failed(
                "the lease \(storage)/\(key) is not readable (\(error))",
                hint: "if no job is running, delete it")
        }
    }
}
