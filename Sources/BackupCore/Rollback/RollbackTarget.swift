import Foundation

/// What a backup is for.
public enum BackupKind: String, Codable, Sendable {
    /// The state a rollback replaced, archived once the rollback ended. Restorable by name, never a target.
    case safety
}

/// Which backup a rollback restores: the newest that is complete, trusted, not dated in the future, taken
/// while the app was healthy (it began no later than the last healthy probe before the incident, and its own
/// record of the app's health does not say unhealthy), not a safety or labelled backup, and not already tried
/// for this incident. Pure: the runner lists the candidates, this ranks them with a reason for each one passed
/// over, and the runner verifies the eligible ones in order (a failing one is skipped for the next older).
public enum RollbackTarget {
    /// One backup, as the runner sees it in the store (only complete backups, those with a manifest, are listed).
    public struct Candidate: Sendable, Equatable {
        public var name: BackupName
        public var authenticity: Authenticity
        public var kind: BackupKind?
        public var label: String?
        public var health: HealthAtStart?
        public init(
            name: BackupName, authenticity: Authenticity, kind: BackupKind? = nil, label: String? = nil,
            health: HealthAtStart? = nil
        ) {
            self.name = name
            self.authenticity = authenticity
            self.kind = kind
            self.label = label
            self.health = health
        }
    }

    /// The incident's side of the rule.
    public struct Rules: Sendable, Equatable {
        /// The last healthy probe before the incident; nil when none is known (then only the backups' own
        /// health records speak).
        public var lastHealthy: Date?
        /// The store's clock now, and how far ahead of it a name may be.
        public var now: Date
        public var futureAllowance: TimeInterval
        /// Targets already restored for this incident.
        public var alreadyTried: Set<String>
        public init(lastHealthy: Date?, now: Date, futureAllowance: TimeInterval, alreadyTried: Set<String> = []) {
            self.lastHealthy = lastHealthy
            self.now = now
            self.futureAllowance = futureAllowance
            self.alreadyTried = alreadyTried
        }
    }

    /// Why a backup is not a target.
    public enum Skip: Sendable, Equatable, CustomStringConvertible {
        case safety
        case labelled(String)
        case future(seconds: TimeInterval)
        case notTrusted(Authenticity)
        /// It began after the last healthy probe: it may hold the broken state.
        case afterLastHealthy(Date)
        /// Its metadata says the app was unhealthy when it began.
        case unhealthyAtStart
        case alreadyTried

        public var description: String {
            switch self {
            case .safety: "a safety backup (the broken state of an earlier rollback)"
            case .labelled(let label): "labelled \"\(label)\" (labelled backups are never targets)"
            case .future(let seconds): "dated \(DurationFormat.string(seconds: seconds)) ahead of the store's clock"
            case .notTrusted(let authenticity): "\(authenticity)"
            case .afterLastHealthy(let date):
                "began after the app was last seen healthy (\(ISO8601DateFormatter().string(from: date)))"
            case .unhealthyAtStart: "the app was unhealthy when it began"
            case .alreadyTried: "already restored for this incident"
            }
        }
    }

    /// Every candidate, newest first, with nil for an eligible one or the reason it is passed over.
    public static func rank(_ candidates: [Candidate], rules: Rules) -> [(candidate: Candidate, skip: Skip?)] {
        candidates.sorted { $0.name > $1.name }.map { ($0, skip($0, rules: rules)) }
    }

    public static func skip(_ candidate: Candidate, rules: Rules) -> Skip? {
        if candidate.kind == .safety { return .safety }
        if let label = candidate.label, !label.isEmpty { return .labelled(label) }
        let ahead = candidate.name.date.timeIntervalSince(rules.now)
        if ahead > rules.futureAllowance { return .future(seconds: ahead) }
        if !candidate.authenticity.isTrusted { return .notTrusted(candidate.authenticity) }
        if let lastHealthy = rules.lastHealthy, candidate.name.date > lastHealthy { return .afterLastHealthy(lastHealthy) }
        // The same rule on the sidecars' clock alone (a backup's name is the backup host's clock): a backup that
        // saw the last healthy probe, or a later one, as its newest began after it.
        if let lastHealthy = rules.lastHealthy, let probe = candidate.health?.lastProbe, probe >= lastHealthy {
            return .afterLastHealthy(lastHealthy)
        }
        if candidate.health?.state == .unhealthy { return .unhealthyAtStart }
        if rules.alreadyTried.contains(candidate.name.fileName) { return .alreadyTried }
        return nil
    }
}
