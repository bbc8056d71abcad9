import BackupCore
import Foundation

/// What a lease object holds (`.contingency/locks/<name>.lock`).
///
/// Its times are the holder's own clock, for people reading it; whether it expired is never decided from them
/// (the hosts that share a store disagree about the time), but from the lease object's last write and the
/// store's current time, both by the store's clock, and the lease time `ttl`: see `LeaseHolder`.
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
    /// The lease time in seconds: the lease expires this long after its object's last write, by the store's
    /// clock. Absent in leases written before it existed: then `expires - renewed`, a duration on one clock.
    public var ttl: Double?

    public init(
        owner: String, job: String, host: String, pid: Int32, acquired: Date, renewed: Date, expires: Date, token: Int,
        released: Bool, ttl: Double?
    ) {
        self.owner = owner
        self.job = job
        self.host = host
        self.pid = pid
        self.acquired = acquired
        self.renewed = renewed
        self.expires = expires
        self.token = token
        self.released = released
        self.ttl = ttl
    }

    /// How long the lease lasts after each write.
    public var leaseTime: TimeInterval { ttl ?? max(0, expires.timeIntervalSince(renewed)) }
}

/// A lease as another job finds it: its record, and when it was last written and read, by the store's clock.
public struct LeaseHolder: Sendable, CustomStringConvertible {
    public let record: LeaseRecord
    /// The lease object's last write (its holder's last renewal), by the store's clock.
    public let written: Date
    /// The store's time when the lease was judged.
    public let storeTime: Date

    public init(record: LeaseRecord, written: Date, storeTime: Date) {
        self.record = record
        self.written = written
        self.storeTime = storeTime
    }

    /// A bucket's clock counts whole seconds (`Date`, `Last-Modified`), so the time since the last write, read
    /// from it, may be up to a second longer than the truth: a lease is taken as expired only this much after
    /// its lease time, never before it truly ran out.
    public static let clockResolution: TimeInterval = 1

    /// When the lease runs out unless renewed, by the store's clock.
    var expiry: Date { written.addingTimeInterval(record.leaseTime + Self.clockResolution) }

    /// How much longer the lease lasts unless renewed (0 once expired), measured on the store's clock.
    public var remaining: TimeInterval { max(0, expiry.timeIntervalSince(storeTime)) }

    /// True once the holder released it or stopped renewing for a whole lease time, by the store's clock.
    public var isFree: Bool { record.released || expiry <= storeTime }

    /// "backup-job (pid 1234 on host web-1, held for 2m 05s, lease expires in 40s unless renewed, owner 3f2a…)".
    /// Only durations: each measured on one clock (the holder's, then the store's).
    public var description: String {
        let held = max(0, record.renewed.timeIntervalSince(record.acquired))
            + max(0, storeTime.timeIntervalSince(written))
        return "\(record.job) (pid \(record.pid) on host \(record.host), held for \(DurationFormat.string(seconds: held)), "
            + "lease expires in \(DurationFormat.string(seconds: remaining)) unless renewed, owner \(record.owner.prefix(8)))"
    }
}

/// An exclusive lease on a store-wide name, built only on the `Storage` contract (conditional create and
/// compare-and-swap), so it behaves the same on a volume and on a bucket.
///
/// The holder renews it every third of its TTL. If the holder dies, the lease expires and the next job takes
/// it over with a higher token. Expiry is measured on the store's clock (`Storage.currentTime()` against the
/// lease object's last write), never this host's: a holder whose clock is hours off neither loses a live
/// lease nor keeps a dead one. This host's clock only measures durations (`timeout`, the renewal period).
/// A holder that finds its renewal refused has lost the lease and must stop before publishing anything:
/// `confirm()` is that check.
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
    /// The renewals refused (after an answer perhaps lost) whose read-back failed, since the last known version:
    /// any of them may be the stored lease, which is then still this run's.
    private var unconfirmed: [[UInt8]] = []
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
        onWait: @Sendable (LeaseHolder) -> Void = { _ in },
        onLost: @escaping @Sendable (ContingencyError) -> Void = { _ in }
    ) async throws -> Lease {
        let key = key(for: name)
        let deadline = ContinuousClock.now.advanced(by: .seconds(timeout))
        let owner = UUID().uuidString.lowercased()
        var announced = false
        while true {
            try Task.checkCancellation()
            let now = Date()
            var record = LeaseRecord(
                owner: owner, job: job, host: ProcessInfo.processInfo.hostName, pid: getpid(), acquired: now,
                renewed: now, expires: now.addingTimeInterval(TimeInterval(ttl)), token: 1, released: false,
                ttl: TimeInterval(ttl))
            if let current = try storage.read(key: key) {
                let found = try decode(current.data, key: key, storage: storage)
                if found.owner == owner {
                    // Our own create or takeover went through but its answer was lost (and the retry was refused).
                    return Lease(
                        name: name, key: key, storage: storage, ttl: TimeInterval(ttl), record: found,
                        etag: current.etag
                    ).startingRenewal(onLost: onLost)
                }
                // The store's time from the read's own answer, or read after it: never before the write it is
                // compared with.
                let storeTime = try current.storeTime ?? storage.currentTime()
                let holder = LeaseHolder(record: found, written: current.modified, storeTime: storeTime)
                if holder.isFree {
                    // The record is read from the store, which others may write: its token may be at the end.
                    let (next, overflow) = found.token.addingReportingOverflow(1)
                    guard !overflow else {
                        throw ContingencyError.failed(
                            "the lease \(key) in \(storage) holds token \(found.token), which cannot grow: this product did not write it",
                            hint: "delete \(storage)/\(key) once you are sure no job runs")
                    }
                    record.token = next
                    if let etag = try storage.replace(key: key, data: encode(record), ifMatch: current.etag) {
                        return Lease(name: name, key: key, storage: storage, ttl: TimeInterval(ttl), record: record, etag: etag)
                            .startingRenewal(onLost: onLost)
                    }
                    continue  // someone else took it over first: look again
                }
                let left = deadline - ContinuousClock.now
                if left <= .zero {
                    throw ContingencyError.locked(
                        "the store \(storage) is locked by \(holder)",
                        hint: timeout > 0
                            ? "waited \(timeout)s (LOCK_TIMEOUT); try again later"
                            : "wait for it to finish or set LOCK_TIMEOUT to wait; if its holder is gone, the lease expires by itself (LOCK_TTL), or delete \(storage)/\(key) once you are sure no job runs")
                }
                if !announced {
                    onWait(holder)
                    announced = true
                }
                let wait = min(max(0.05, holder.remaining), 0.5, max(0.05, left / .seconds(1)))
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
            next.ttl = ttl
            let data = Self.encode(next)
            guard let newTag = try storage.replace(key: key, data: data, ifMatch: etag) else {
                // Only a lease read back proves it lost. A read-back that fails is an error (the renewal timer
                // tries again, `confirm()` throws it), not a removal: the lease is kept, this renewal remembered
                // as perhaps written, and `release()` still lets the next job in.
                let stored: StoredObject?
                do {
                    stored = try storage.read(key: key)
                } catch {
                    unconfirmed.append(data)
                    throw ContingencyError.failed(
                        "the renewal of the lease \(key) in \(storage) was refused, and reading the lease back to "
                            + "tell whether this run still holds it failed: \(error)",
                        hint: "check that the store answers; the run does not publish until its lease is confirmed")
                }
                if let stored, stored.data == data || unconfirmed.contains(stored.data) {
                    // This renewal (or one whose read-back failed) was written, but its answer was lost and the
                    // retried write refused: the lease is still this run's, renewed.
                    record = stored.data == data ? next : try Self.decode(stored.data, key: key, storage: storage)
                    etag = stored.etag
                    unconfirmed = []
                    return
                }
                let storeTime = stored?.storeTime ?? (try? storage.currentTime())
                let current = try? stored.map {
                    LeaseHolder(
                        record: try Self.decode($0.data, key: key, storage: storage), written: $0.modified,
                        storeTime: storeTime ?? $0.modified)
                }
                let reason = ContingencyError.locked(
                    "lost the lease \(key) (token \(record.token)): "
                        + (current.map { "now held by \($0) with token \($0.record.token)" }
                            ?? "it was removed"),
                    hint: "this run stopped renewing for longer than LOCK_TTL (paused or overloaded); it aborts without publishing")
                lost = reason
                throw reason
            }
            record = next
            etag = newTag
            unconfirmed = []
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
            let data = Self.encode(released)
            let releasedTag = try? storage.replace(key: key, data: data, ifMatch: etag)
            if releasedTag == nil, !unconfirmed.isEmpty, let stored = try? storage.read(key: key),
                unconfirmed.contains(stored.data)
            {
                // A renewal whose read-back failed was written after all: the lease is this run's, at its version.
                _ = try? storage.replace(key: key, data: data, ifMatch: stored.etag)
            }
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
