import BackupCore
import BackupStorage
import Foundation
import Logging
import Synchronization

/// What the stores say about the backups, computed when Prometheus scrapes (METRICS20.md, source B): how many
/// complete backups each store holds, the newest backup's completion time, duration and size, the size of the
/// one before it, the newest passing drill, and the volume's free bytes.
///
/// - "The newest" is the one a restore would take (`NewestBackup`): complete, trusted (genuine, or no verify
///   keys), not dated ahead of this host's clock by more than CLOCK_SKEW_ALLOWANCE, and never a safety backup.
///   The host's clock rather than the store's: asking a volume for its time writes a file, and a scrape writes
///   nothing.
/// - Bounded reads: each store is listed once per scrape; a manifest is read only when the gauges need it (the
///   newest backups' until the newest and the one before it are found, the most recently written ones for the
///   last drill) and only once while it is unchanged (kept by size and modification time, a few numbers each).
/// - A slow store never holds a scrape: the reading runs on its own thread and the scrape waits for it at most
///   `deadline`, then serves what was read so far and logs what it left out. The reading goes on, one at a
///   time, and what it finds serves the next scrape.
public final class StoreMetrics: Sendable {
    public static let backups = "contingency_backups"
    public static let lastSuccess = "contingency_backup_last_success_timestamp_seconds"
    public static let lastDuration = "contingency_backup_last_duration_seconds"
    public static let lastSize = "contingency_backup_last_size_bytes"
    public static let previousSize = "contingency_backup_previous_size_bytes"
    public static let lastVerified = "contingency_backup_last_verified_timestamp_seconds"
    public static let freeBytes = "contingency_store_free_bytes"
    /// Every family this source gives: no other source may give them (a file in the store cannot stand in for
    /// the store's own answer, even when the store gave none).
    public static let names: Set<String> = [
        backups, lastSuccess, lastDuration, lastSize, previousSize, lastVerified, freeBytes,
    ]

    /// How long a scrape waits for the stores by default: under Prometheus' default scrape timeout (10 s).
    public static let defaultDeadline: Duration = .seconds(5)

    /// The primary store first (its listing decides whether the newest backup can be told at all).
    /// Each labelled `store` by its kind ("volume", "bucket").
    public let stores: [any Storage]
    public let prefix: String
    /// nil when the verify keys could not be loaded: which backups are genuine is then unknown, and the gauges
    /// that depend on it (the newest backup's, the last verification) are left out rather than guessed.
    public let authenticator: ManifestAuthenticator?
    /// CLOCK_SKEW_ALLOWANCE: how far ahead of now a backup's name may be dated and still be the newest.
    public let allowance: TimeInterval
    public let logger: Logger

    private let state = Mutex(State())

    public init(
        stores: [any Storage], prefix: String, authenticator: ManifestAuthenticator?, allowance: TimeInterval,
        logger: Logger
    ) {
        self.stores = stores
        self.prefix = prefix
        self.authenticator = authenticator
        self.allowance = allowance
        self.logger = logger
    }

    /// The families of source B, from the reading in progress or a new one, after at most `deadline`.
    public func families(deadline: Duration = StoreMetrics.defaultDeadline) async -> [MetricFamily] {
        let (progress, task) = state.withLock { state -> (Progress, Task<Void, Never>) in
            if let running = state.running { return running }
            let progress = Progress()
            let task = Task {
                await Blocking.run { self.read(into: progress, now: Date()) }
                let done = progress.snapshot
                self.state.withLock {
                    $0.running = nil
                    $0.last = done
                }
            }
            state.running = (progress, task)
            return (progress, task)
        }
        _ = await ScrapeDeadline.value(within: deadline) { await task.value }
        var reading = progress.snapshot
        let left = leftOut(reading)
        if !left.isEmpty, let last = state.withLock({ $0.last }) {
            // Late: the last complete reading stands in whole (a mix of two readings could pair a newest backup
            // with a previous one that is not its predecessor).
            logger.warning(
                "GET /metrics: the store had not answered within \(deadline): served the last complete reading (the reading goes on)"
            )
            reading = last
        } else if !left.isEmpty {
            logger.warning(
                "GET /metrics: served without \(left.joined(separator: ", ")): the store had not answered within \(deadline) (the reading goes on; the next scrape uses what it finds)"
            )
        }
        for note in reading.notes { logger.warning("GET /metrics: \(note)") }
        return Self.families(reading)
    }

    // MARK: - The reading

    /// What one reading found so far; each part is set once it is complete.
    struct Reading: Sendable {
        /// Complete backups by store label, for the stores listed.
        var counts: [(label: String, count: Int)] = []
        var free: [(label: String, bytes: Int64)] = []
        var listed = false
        /// Set once the newest backup is decided (with `newest` nil when there is none).
        var newestDone = false
        var newest: Facts?
        var previous: Facts?
        var verifiedDone = false
        var verified: Date?
        /// Set when the newest backup cannot be told at all (the primary store cannot be listed, the verify keys
        /// cannot be loaded): its gauges are left out, and `notes` says why.
        var gaveUp = false
        /// Why parts were not computed (a store that could not be listed, keys that could not be loaded).
        var notes: [String] = []
    }

    /// What the metrics use of one manifest.
    struct Facts: Sendable {
        var size: Int64
        var created: Date
        var completed: Date?
        var duration: TimeInterval?
        /// When a drill last passed on it.
        var verified: Date?
        var safety: Bool
        var authenticity: Authenticity
    }

    /// One reading's results, shared between the thread that reads and the scrapes that wait for it.
    final class Progress: Sendable {
        private let reading = Mutex(Reading())
        var snapshot: Reading { reading.withLock { $0 } }
        func update(_ change: (inout Reading) -> Void) { reading.withLock { change(&$0) } }
    }

    /// A manifest's facts as last read, valid while its size and modification time are the same.
    struct Cached: Sendable {
        var size: Int64
        var modified: Date
        /// nil: the manifest could not be decoded.
        var facts: Facts?
    }

    private struct State: Sendable {
        var running: (Progress, Task<Void, Never>)?
        /// The last reading that ran to its end: what a scrape serves when the one in progress is late.
        var last: Reading?
        /// By "<store index>/<manifest name>".
        var cache: [String: Cached] = [:]
    }

    /// A backup name and the stores that hold it complete, in store order, with its manifest's listing.
    private struct Candidate {
        let name: BackupName
        var copies: [(store: Int, manifest: ObjectInfo)]
    }

    /// Blocking: lists every store, decides the newest backup and the one before it, then reads the rest of the
    /// manifests for the last verification. Each step is published to `progress` as soon as it is done.
    private func read(into progress: Progress, now: Date) {
        var candidates: [String: Candidate] = [:]
        var primaryListed = false
        for (index, store) in stores.enumerated() {
            let objects: [ObjectInfo]
            do {
                objects = try store.list(folder: "")
            } catch {
                progress.update { $0.notes.append("cannot list \(store): \(error)") }
                continue
            }
            if index == 0 { primaryListed = true }
            let byName = Dictionary(objects.map { ($0.name, $0) }) { first, _ in first }
            var count = 0
            for object in objects {
                guard let name = BackupName.parse(fileName: object.name, prefix: prefix), name.fileName == object.name,
                    let manifest = byName[name.manifestName]
                else { continue }
                count += 1
                candidates[name.fileName, default: Candidate(name: name, copies: [])].copies.append((index, manifest))
            }
            let free = try? store.availableBytes()
            progress.update {
                $0.counts.append((store.kind.rawValue, count))
                if let free { $0.free.append((store.kind.rawValue, free)) }
            }
            let kept = Set(byName.keys.map { "\(index)/\($0)" })
            state.withLock { state in
                state.cache = state.cache.filter { !$0.key.hasPrefix("\(index)/") || kept.contains($0.key) }
            }
        }
        progress.update { $0.listed = true }
        guard primaryListed, let authenticator else {
            progress.update {
                $0.gaveUp = true
                if authenticator == nil {
                    $0.notes.append("the newest backup's gauges are left out: BACKUP_VERIFY_KEYS could not be loaded")
                }
            }
            return
        }
        let ordered = candidates.values.sorted { $0.name > $1.name }
        var facts: [String: Facts?] = [:]
        func factsOf(_ candidate: Candidate) -> Facts? {
            if let known = facts[candidate.name.fileName] { return known }
            let found = self.facts(of: candidate, authenticator: authenticator, progress: progress)
            facts.updateValue(found, forKey: candidate.name.fileName)  // nil included: known unreadable
            return found
        }
        // The same choice as a restore's (`BackupLocator`): a safety backup, or one whose manifest cannot be
        // read, is never the newest, so it counts as not trusted here.
        func choose(_ among: [Candidate]) -> Candidate? {
            NewestBackup.choose(
                among, name: \.name,
                authenticity: { candidate in
                    guard let facts = factsOf(candidate) else { return .notGenuine("its manifest cannot be read") }
                    return facts.safety ? .notGenuine("a safety backup") : facts.authenticity
                }, now: now, allowance: allowance
            ).chosen
        }
        let newest = choose(ordered)
        let previous = newest.flatMap { newest in choose(ordered.filter { $0.name < newest.name }) }
        // Read (or found in the cache) while choosing; never read under `progress`'s lock.
        let newestFacts = newest.flatMap(factsOf)
        let previousFacts = previous.flatMap(factsOf)
        progress.update {
            $0.newest = newestFacts
            $0.previous = previousFacts
            $0.newestDone = true
        }
        // A drill's date is not signed: one dated ahead of now is not believed (it would silence the alert on
        // backups never verified for good). A drill records its pass by rewriting the manifest, so no manifest
        // last written before the best pass found so far (give or take the clocks' allowance) can hold a newer
        // one: the walk goes from the most recently written manifest and stops there, which reads one or two
        // manifests on most scrapes rather than all of them.
        let latest = now.addingTimeInterval(allowance)
        var verified: Date?
        let byWriting = ordered.map { candidate in
            (candidate, candidate.copies.map(\.manifest.modified).max() ?? .distantPast)
        }.sorted { $0.1 > $1.1 }
        for (candidate, written) in byWriting {
            if let verified, written.addingTimeInterval(allowance) < verified { break }
            guard let facts = factsOf(candidate), facts.authenticity.isTrusted, let at = facts.verified, at <= latest
            else { continue }
            verified = max(verified ?? at, at)
        }
        progress.update {
            $0.verified = verified
            $0.verifiedDone = true
        }
    }

    /// The facts of the first trusted copy of `candidate`, else of its first readable one; nil when none can be
    /// read. Manifests come from the cache while unchanged.
    private func facts(of candidate: Candidate, authenticator: ManifestAuthenticator, progress: Progress) -> Facts? {
        var readable: Facts?
        for copy in candidate.copies {
            let key = "\(copy.store)/\(copy.manifest.name)"
            var found: Facts?
            if let cached = state.withLock({ $0.cache[key] }), cached.size == copy.manifest.size,
                cached.modified == copy.manifest.modified
            {
                found = cached.facts
            } else {
                let storage = stores[copy.store]
                do {
                    found = try BackupCatalog.manifest(for: candidate.name, in: storage).map { manifest in
                        let (authenticity, checked) = authenticator.authenticate(
                            manifest, fileName: candidate.name.fileName)
                        return Facts(
                            size: checked.archive.size, created: checked.metadata.created, completed: checked.completed,
                            duration: checked.duration, verified: checked.verified.flatMap { $0.ok ? $0.at : nil },
                            safety: checked.metadata.kind == .safety, authenticity: authenticity)
                    }
                    let cached = Cached(size: copy.manifest.size, modified: copy.manifest.modified, facts: found)
                    state.withLock { $0.cache[key] = cached }
                } catch {
                    progress.update { $0.notes.append("\(candidate.name.fileName) in \(storage): \(error)") }
                    continue
                }
            }
            guard let facts = found else { continue }
            if facts.authenticity.isTrusted { return facts }
            if readable == nil { readable = facts }
        }
        return readable
    }

    // MARK: - Families

    /// What a scrape of `reading` leaves out because the reading had not got that far.
    private func leftOut(_ reading: Reading) -> [String] {
        var left: [String] = []
        if !reading.listed {
            let counted = Set(reading.counts.map(\.label))
            left += stores.filter { !counted.contains($0.kind.rawValue) }.map {
                "\(Self.backups){store=\"\($0.kind.rawValue)\"}"
            }
        }
        // Parts given up for a reason of their own are named in the notes instead.
        if !reading.gaveUp {
            if !reading.newestDone { left.append("the newest backup's gauges") }
            if !reading.verifiedDone { left.append(Self.lastVerified) }
        }
        return left
    }

    static func families(_ reading: Reading) -> [MetricFamily] {
        func gauge(_ name: String, _ help: String, _ samples: [MetricSample]) -> MetricFamily {
            MetricFamily(name: name, help: help, kind: .gauge, samples: samples)
        }
        func single(_ name: String, _ value: Double?) -> [MetricSample] {
            value.map { [MetricSample(name: name, value: $0)] } ?? []
        }
        let newest = reading.newestDone ? reading.newest : nil
        return [
            gauge(
                backups, "Complete backups (archive and manifest) in each store.",
                reading.counts.map {
                    MetricSample(name: backups, labels: [.init("store", $0.label)], value: Double($0.count))
                }),
            // The signed start plus the duration, which is unsigned but bounded (`Manifest.duration`): a manifest
            // edited in the store cannot hold the freshness alert off for more than a day.
            gauge(
                lastSuccess, "Completion time of the newest complete, trusted, ordinary backup (Unix seconds).",
                single(lastSuccess, newest.map { $0.created.addingTimeInterval($0.duration ?? 0).timeIntervalSince1970 })),
            gauge(
                lastDuration, "How long the newest backup took, from its start to its completion.",
                single(lastDuration, newest?.duration)),
            gauge(lastSize, "Archive size of the newest backup.", single(lastSize, newest.map { Double($0.size) })),
            gauge(
                previousSize, "Archive size of the backup before the newest one.",
                single(previousSize, reading.newestDone ? reading.previous.map { Double($0.size) } : nil)),
            gauge(
                lastVerified, "Time of the newest passing restore drill of any trusted backup; 0 when none passed.",
                single(lastVerified, reading.verifiedDone ? reading.verified?.timeIntervalSince1970 ?? 0 : nil)),
            gauge(
                freeBytes, "Bytes free for new backups on the backup volume.",
                reading.free.map {
                    MetricSample(name: freeBytes, labels: [.init("store", $0.label)], value: Double($0.bytes))
                }),
        ].filter { !$0.samples.isEmpty }
    }
}
