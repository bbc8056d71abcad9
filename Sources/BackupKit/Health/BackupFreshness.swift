import BackupCore
import BackupStorage
import Foundation
import Synchronization

/// The newest complete backup in the store and its age, for the sidecar's `/healthz`. Listing a bucket costs a
/// request, so the answer is cached and read again at most every `refreshEvery` seconds, off the cooperative
/// pool; a request that finds the cache old gets the old answer at once and starts the refresh.
public final class BackupFreshness: Sendable {
    /// What the store held when last read.
    public struct Report: Sendable, Equatable {
        /// The newest complete backup (it has its manifest) not dated ahead of the reading; nil when none.
        public var newest: BackupName?
        /// When the store was read.
        public var read: Date
        /// Why it could not be read, if it could not.
        public var error: String?
    }

    public let storage: any Storage
    public let prefix: String
    public let staleAfter: TimeInterval
    public let refreshEvery: TimeInterval

    private struct State {
        var report: Report?
        var refreshing = false
    }
    private let state = Mutex(State())

    public init(storage: any Storage, prefix: String, staleAfter: TimeInterval, refreshEvery: TimeInterval = 30) {
        self.storage = storage
        self.prefix = prefix
        self.staleAfter = staleAfter
        self.refreshEvery = refreshEvery
    }

    /// The cached report, read first if there is none yet.
    public func report(now: Date = Date()) async -> Report {
        let (cached, start) = state.withLock { state -> (Report?, Bool) in
            let due = state.report.map { now.timeIntervalSince($0.read) >= refreshEvery || $0.read > now } ?? true
            let start = due && !state.refreshing
            if start { state.refreshing = true }
            return (state.report, start)
        }
        if let cached {
            if start { Task { await refresh() } }
            return cached
        }
        if start { return await refresh() }
        // Another request is reading the store for the first time: answer from a reading of our own.
        return await Blocking.run { self.read() }
    }

    /// Whether `report`'s newest backup is older than `staleAfter` at `now` (no backup at all is stale).
    public func isStale(_ report: Report, now: Date = Date()) -> Bool {
        guard let newest = report.newest else { return true }
        return now.timeIntervalSince(newest.date) > staleAfter
    }

    @discardableResult
    private func refresh() async -> Report {
        let report = await Blocking.run { self.read() }
        state.withLock {
            $0.report = report
            $0.refreshing = false
        }
        return report
    }

    /// Blocking: lists the store.
    private func read() -> Report {
        let now = Date()
        do {
            let objects = try storage.list(folder: "")
            let names = Set(objects.map(\.name))
            // A name is a claim, not a time: one dated ahead of now (beyond a clock's drift) is not "the newest".
            let newest = objects.compactMap { BackupName.parse(fileName: $0.name, prefix: prefix) }
                .filter { names.contains($0.manifestName) && $0.date <= now.addingTimeInterval(300) }
                .max()
            return Report(newest: newest, read: now)
        } catch {
            return Report(newest: nil, read: now, error: "\(error)")
        }
    }
}
