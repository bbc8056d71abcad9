import Foundation

/// One backup as retention sees it: its time from its NAME (never a storage modification time), what kind it
/// is, whether a drill or a check verified it, whether an operator pinned it, and which stores hold it.
public struct RetentionCandidate: Sendable, Equatable {
    /// What the backup is, for retention.
    public enum Kind: String, Sendable, Equatable {
        /// An ordinary backup.
        case regular
        /// BACKUP_LABEL: an operator's copy (an investigation); aged like a regular one, never a rollback target.
        case labelled
        /// The broken state a rollback replaced: kept SAFETY_RETENTION_DAYS, never counted as a good backup.
        case safety
        /// An archive of the runbook's shell script: no manifest, aged by its name, never verified.
        case legacy
    }

    /// The outcome of the last drill or check (`manifest.verified`), or none.
    public enum Verification: String, Sendable, Equatable {
        case passed
        case failed
        case none
    }

    public var fileName: String
    public var date: Date
    public var kind: Kind
    public var verification: Verification
    public var pinned: Bool
    /// The stores holding it (their descriptions), for the per-store brake.
    public var stores: [String]

    public init(
        fileName: String, date: Date, kind: Kind = .regular, verification: Verification = .none, pinned: Bool = false,
        stores: [String] = []
    ) {
        self.fileName = fileName
        self.date = date
        self.kind = kind
        self.verification = verification
        self.pinned = pinned
        self.stores = stores
    }

    /// A good backup: verified, and neither a safety backup nor an unchecked shell-script archive.
    public var isGoodBackup: Bool { verification == .passed && (kind == .regular || kind == .labelled) }
}

/// Why a backup stays or goes: said in `--dry-run`, in the logs and in the API's answer.
public enum RetentionReason: Sendable, Equatable, CustomStringConvertible {
    case pinned
    /// Dated this many seconds ahead of the store's clock.
    case datedAhead(seconds: TimeInterval)
    /// The n-th newest verified backup, n ≤ BACKUP_KEEP_MIN.
    case newestVerified(rank: Int, of: Int)
    case withinRetention(ageDays: Int, retentionDays: Int)
    case safetyWithinRetention(ageDays: Int, retentionDays: Int)
    /// The newest backup of a day, week or month that BACKUP_KEEP_DAILY/WEEKLY/MONTHLY keeps.
    case keptPeriod(period: String, bucket: String)
    /// No verified backup is newer: deleting it could leave only failing ones.
    case noNewerVerified
    case expired(ageDays: Int, retentionDays: Int)
    case safetyExpired(ageDays: Int, retentionDays: Int)

    public var description: String {
        switch self {
        case .pinned: "pinned"
        case .datedAhead(let seconds): "its name is dated \(Int(seconds))s ahead of the store's clock"
        case .newestVerified(let rank, let of): "one of the \(of) newest verified backups (BACKUP_KEEP_MIN), #\(rank)"
        case .withinRetention(let age, let days): "\(age) days old, within BACKUP_RETENTION_DAYS (\(days))"
        case .safetyWithinRetention(let age, let days):
            "safety backup \(age) days old, within SAFETY_RETENTION_DAYS (\(days))"
        case .keptPeriod(let period, let bucket):
            "newest backup of \(period) \(bucket) (BACKUP_KEEP_\(period.uppercased()))"
        case .noNewerVerified: "no newer verified backup exists"
        case .expired(let age, let days): "\(age) days old, older than BACKUP_RETENTION_DAYS (\(days))"
        case .safetyExpired(let age, let days):
            "safety backup \(age) days old, older than SAFETY_RETENTION_DAYS (\(days))"
        }
    }
}

/// The decision for one backup.
public struct RetentionDecision: Sendable, Equatable {
    public let candidate: RetentionCandidate
    public let keep: Bool
    public let reason: RetentionReason
    public var fileName: String { candidate.fileName }
}

/// Every backup's decision, newest first, and whether the brake refused it all.
public struct RetentionPlan: Sendable, Equatable {
    public let decisions: [RetentionDecision]
    /// Set when the plan would delete every backup (of all stores, or of one store): nothing is to be deleted.
    public let refusal: String?

    public var toDelete: [RetentionDecision] { refusal == nil ? decisions.filter { !$0.keep } : [] }
    public var toKeep: [RetentionDecision] { refusal == nil ? decisions.filter(\.keep) : decisions }
}

/// Retention, pure: given the complete backups, the store's time and the policy, keep or delete each one.
///
/// In order, a backup is kept when: it is pinned; its name is dated ahead of the store's clock (a claim, not a
/// time); it is one of the newest BACKUP_KEEP_MIN verified backups; it is a safety backup younger than
/// SAFETY_RETENTION_DAYS, or another backup younger than BACKUP_RETENTION_DAYS; it is the newest of one of the
/// BACKUP_KEEP_DAILY/WEEKLY/MONTHLY most recent days, weeks or months (a backup whose verification failed
/// never fills such a slot); or no verified backup is newer than it (so that backups that keep failing never
/// make retention delete the last good ones). Otherwise it goes. Finally the brake: a plan that would delete
/// every backup, or every backup one store holds, is refused whole ("would delete all N existing backups").
public enum RetentionRules {
    public static func plan(_ candidates: [RetentionCandidate], now: Date, policy: RetentionPolicy) -> RetentionPlan {
        let sorted = candidates.sorted { ($0.date, $0.fileName) > ($1.date, $1.fileName) }
        let latest = now.addingTimeInterval(policy.futureAllowance)
        let dated = sorted.filter { $0.date <= latest }
        let good = dated.filter(\.isGoodBackup)
        let newestGood = Dictionary(
            good.prefix(policy.keepMin).enumerated().map { ($0.element.fileName, $0.offset + 1) }
        ) { first, _ in first }
        let periods = periodKeepers(dated.filter { $0.kind != .safety && $0.verification != .failed }, policy: policy)
        let newestGoodDate = good.first?.date

        let decisions = sorted.map { candidate -> RetentionDecision in
            func keep(_ reason: RetentionReason) -> RetentionDecision {
                .init(candidate: candidate, keep: true, reason: reason)
            }
            let age = now.timeIntervalSince(candidate.date)
            let ageDays = max(0, Int((age / 86_400).rounded(.down)))
            if candidate.pinned { return keep(.pinned) }
            if candidate.date > latest { return keep(.datedAhead(seconds: -age)) }
            if let rank = newestGood[candidate.fileName] {
                return keep(.newestVerified(rank: rank, of: policy.keepMin))
            }
            if candidate.kind == .safety {
                if age < TimeInterval(policy.safetyRetentionDays) * 86_400 {
                    return keep(.safetyWithinRetention(ageDays: ageDays, retentionDays: policy.safetyRetentionDays))
                }
            } else {
                if age < TimeInterval(policy.retentionDays) * 86_400 {
                    return keep(.withinRetention(ageDays: ageDays, retentionDays: policy.retentionDays))
                }
                if let (period, bucket) = periods[candidate.fileName] {
                    return keep(.keptPeriod(period: period, bucket: bucket))
                }
            }
            guard let newestGoodDate, newestGoodDate > candidate.date else { return keep(.noNewerVerified) }
            return RetentionDecision(
                candidate: candidate, keep: false,
                reason: candidate.kind == .safety
                    ? .safetyExpired(ageDays: ageDays, retentionDays: policy.safetyRetentionDays)
                    : .expired(ageDays: ageDays, retentionDays: policy.retentionDays))
        }
        return RetentionPlan(decisions: decisions, refusal: brake(decisions))
    }

    /// offen/docker-volume-backup's brake, also per store: deleting everything one store holds (the bucket's
    /// off-site copy, say) is refused as well.
    public static func brake(_ decisions: [RetentionDecision]) -> String? {
        let deleting = decisions.filter { !$0.keep }
        guard !deleting.isEmpty else { return nil }
        if deleting.count == decisions.count {
            return "the current configuration would delete all \(decisions.count) existing backups. Refusing to do so"
        }
        let stores = Set(decisions.flatMap(\.candidate.stores)).sorted()
        for store in stores {
            let held = decisions.filter { $0.candidate.stores.contains(store) }
            if held.allSatisfy({ !$0.keep }) {
                return
                    "the current configuration would delete all \(held.count) existing backups in \(store). Refusing to do so"
            }
        }
        return nil
    }

    /// Grandfather-father-son, as restic's `forget --keep-daily/weekly/monthly`: walking from the newest, the
    /// first backup of each new day (week, month) is kept until that many periods are filled.
    static func periodKeepers(_ candidates: [RetentionCandidate], policy: RetentionPolicy) -> [String: (String, String)]
    {
        var kept: [String: (String, String)] = [:]
        let rules: [(String, Int, (Date) -> String)] = [
            ("daily", policy.keepDaily, dayKey), ("weekly", policy.keepWeekly, weekKey),
            ("monthly", policy.keepMonthly, monthKey),
        ]
        for (period, count, key) in rules where count > 0 {
            var seen = Set<String>()
            for candidate in candidates {
                let bucket = key(candidate.date)
                guard !seen.contains(bucket) else { continue }
                seen.insert(bucket)
                if kept[candidate.fileName] == nil { kept[candidate.fileName] = (period, bucket) }
                if seen.count == count { break }
            }
        }
        return kept
    }

    static func dayKey(_ date: Date) -> String { String(BackupName.formatTimestamp(date).prefix(10)) }
    static func monthKey(_ date: Date) -> String { String(BackupName.formatTimestamp(date).prefix(7)) }
    static func weekKey(_ date: Date) -> String {
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.yearForWeekOfYear, .weekOfYear], from: date)
        let week = c.weekOfYear ?? 0
        return "\(c.yearForWeekOfYear ?? 0)-W\(week < 10 ? "0" : "")\(week)"
    }
}
