import Foundation

/// Which backup a restore takes when none is named: the newest by the time in its name, among those that are
/// trusted (genuine, or nothing to check against) and not dated ahead of the store's clock by more than the
/// allowance. A name is a claim, not a time: a backup named for 2099 would otherwise stay "the newest" for
/// every restore and rollback to come.
public enum NewestBackup {
    /// Why a newer backup was passed over.
    public enum Skip: Sendable, Equatable {
        case notTrusted(Authenticity)
        /// Its name is this many seconds ahead of the store's clock.
        case future(seconds: TimeInterval)
    }

    /// The chosen candidate (nil when none qualifies) and the newer ones passed over, newest first.
    public static func choose<Candidate>(
        _ candidates: [Candidate], name: (Candidate) -> BackupName, authenticity: (Candidate) -> Authenticity,
        now: Date, allowance: TimeInterval
    ) -> (chosen: Candidate?, skipped: [(Candidate, Skip)]) {
        var skipped: [(Candidate, Skip)] = []
        for candidate in candidates.sorted(by: { name($0) > name($1) }) {
            let ahead = name(candidate).date.timeIntervalSince(now)
            if ahead > allowance {
                skipped.append((candidate, .future(seconds: ahead)))
            } else if !authenticity(candidate).isTrusted {
                skipped.append((candidate, .notTrusted(authenticity(candidate))))
            } else {
                return (candidate, skipped)
            }
        }
        return (nil, skipped)
    }
}
