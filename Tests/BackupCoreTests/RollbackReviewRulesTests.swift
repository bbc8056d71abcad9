import Foundation
import Testing

@testable import BackupCore

/// Second reader's cases for the rollback's pure rules: what a sidecar clock that is off does to the target choice.
struct RollbackReviewRulesTests {
    static let now = Date(timeIntervalSince1970: 1_736_951_400)  // 2025-01-15T14:30:00Z (the backup host's clock)

    @Test("A sidecar whose clock runs ahead never makes a backup of the broken state a target")
    func sidecarClockAhead() {
        // The sidecar's clock is 10 minutes ahead of the backup host's. Real times: the app was last healthy at
        // 14:00, the failed deploy broke it at 14:01, a backup began at 14:02 (named 14:02 by the backup host).
        // The sidecar records its last healthy probe as 14:10, and that backup's own health record (the
        // heartbeat it read as it began, on the sidecar's clock) shows it began after that very probe: its
        // newest probe seen is 14:10, the incident's last healthy one.
        let skew: TimeInterval = 600
        let lastHealthyReal = Self.now.addingTimeInterval(-1800)  // 14:00
        let incidentLastHealthy = lastHealthyReal.addingTimeInterval(skew)  // 14:10 on the sidecar's clock
        let backupStart = lastHealthyReal.addingTimeInterval(120)  // 14:02 on the backup host's clock
        let broken = RollbackTarget.Candidate(
            name: BackupName(prefix: "visual_backup", date: backupStart, compression: .gzip, encrypted: false),
            authenticity: .notChecked,
            health: HealthAtStart(
                state: .healthy, lastProbe: incidentLastHealthy, lastHealthy: incidentLastHealthy, consecutiveFailures: 0,
                sidecars: 1))
        let rules = RollbackTarget.Rules(lastHealthy: incidentLastHealthy, now: Self.now, futureAllowance: 300)
        // Its record proves it began no earlier than the last healthy probe: it may hold the broken state.
        #expect(
            RollbackTarget.skip(broken, rules: rules) != nil,
            "a backup that saw the incident's last healthy probe as already made began after it, whatever the names say")
    }
}
