import BackupCore
import BackupStorage
import Foundation
import Logging

/// What a rollback would do now: the backups in the order they would be tried, each eligible one or the reason
/// it is passed over, and the app control's steps. `restore-job --plan` prints it; the runner follows it.
public struct RollbackPlan: Sendable {
    public struct Choice: Sendable {
        public let entry: BackupEntry
        /// nil: eligible.
        public let skip: RollbackTarget.Skip?
    }

    /// Every complete backup, newest first.
    public let choices: [Choice]
    /// The last healthy probe the target must precede (nil: unknown).
    public let lastHealthy: Date?
    public let appControl: String
    public let code: Bool
    public let dataOnly: Bool

    public var eligible: [BackupEntry] { choices.filter { $0.skip == nil }.map(\.entry) }

    /// Builds the plan from the store: the catalog (signatures checked with the restore's keys), the store's
    /// clock, and the targets `alreadyTried` for this incident.
    static func make(
        _ configuration: RollbackConfiguration, stores: Stores, logger: Logger, lastHealthy: Date?,
        alreadyTried: Set<String>, appControl: any AppControl
    ) throws -> RollbackPlan {
        let locator = try BackupLocator(configuration.restore, stores: stores, logger: logger)
        let entries = try locator.catalog.list()
        let rules = RollbackTarget.Rules(
            lastHealthy: lastHealthy, now: try locator.now(),
            futureAllowance: TimeInterval(configuration.restore.trust.clockSkewAllowance), alreadyTried: alreadyTried)
        let byName = Dictionary(entries.map { ($0.fileName, $0) }) { first, _ in first }
        let candidates = entries.map { entry in
            RollbackTarget.Candidate(
                name: entry.name, authenticity: entry.authenticity, kind: entry.manifest.metadata.kind,
                label: entry.manifest.metadata.label, health: entry.manifest.metadata.health)
        }
        let choices = RollbackTarget.rank(candidates, rules: rules).compactMap { ranked in
            byName[ranked.candidate.name.fileName].map { Choice(entry: $0, skip: ranked.skip) }
        }
        return RollbackPlan(
            choices: choices, lastHealthy: lastHealthy, appControl: appControl.description, code: configuration.code,
            dataOnly: configuration.dataOnly)
    }

    /// How the version of `entry` would be handled: nil when it is restored with the data, or why it is not.
    static func versionProblem(_ entry: BackupEntry, code: Bool, appControl: any AppControl) async -> String? {
        guard code else { return nil }
        guard let deployment = entry.manifest.metadata.deployment else {
            return "\(entry.fileName) records no application version (\(appControl) cannot read one, or the backup predates it)"
        }
        do {
            return try await appControl.cannotRestore(deployment)
        } catch {
            return "could not check whether its version can be restored: \(error)"
        }
    }

    /// The plan in words, one line each, for `--plan` and the rollback's log.
    func lines(version: (BackupEntry) async -> String?) async -> [String] {
        var lines: [String] = []
        let healthy = lastHealthy.map { ISO8601DateFormatter().string(from: $0) } ?? "unknown (no sidecar heartbeat)"
        lines.append("Last healthy probe: \(healthy)")
        var target: BackupEntry?
        for choice in choices {
            if let skip = choice.skip {
                lines.append("  skip \(choice.entry.fileName): \(skip)")
            } else if target == nil {
                target = choice.entry
                lines.append("  TARGET \(choice.entry.fileName) (verified in full before anything is touched; if it fails, the next eligible one)")
            } else {
                lines.append("  then \(choice.entry.fileName), if the ones above fail verification")
            }
        }
        guard let target else {
            lines.append("No backup qualifies: nothing would be restored; a person must choose one (restore-job with LATEST_BACKUP)")
            return lines
        }
        var versionRestored = false
        if !code {
            lines.append("Version: not rolled back (ROLLBACK_CODE=false): the deploy pipeline owns the code")
        } else if let problem = await version(target) {
            lines.append("Version: cannot be restored: \(problem)")
            guard dataOnly else {
                lines.append("  the rollback would stop here, touching nothing (set ROLLBACK_DATA_ONLY=true to restore data alone, or ROLLBACK_CODE=false)")
                return lines
            }
            lines.append("  data restored alone (ROLLBACK_DATA_ONLY=true)")
        } else if let deployment = target.manifest.metadata.deployment {
            lines.append("Version: restored with the data: \(deployment.summary)")
            versionRestored = true
        }
        lines.append("Steps: check the app's health once more (a healthy app is not rolled back); verify \(target.fileName) and restore its database beside the live one (app still up); stop the app (\(appControl)); swap in the database, the uploads and the .env; start the app\(versionRestored ? " on the recorded version" : " as it is"); probe until healthy or ROLLBACK_HEALTH_TIMEOUT")
        lines.append("Then: the replaced database, uploads and .env are archived as a safety backup (kind \"safety\", never a rollback target, restorable by name)")
        return lines
    }
}

extension RollbackPlan {
    /// `restore-job --plan`: the plan a rollback would follow now, as the runner would make it (the last healthy
    /// probe from the sidecars' heartbeats, the targets already tried from the history), in lines.
    public static func describe(
        _ configuration: RollbackConfiguration, stores: Stores, appControl: any AppControl, logger: Logger
    ) async throws -> [String] {
        let storage = stores.primary
        let lastHealthy = await Blocking.run { HeartbeatStore(storage: storage).lastHealthy() }
        let plan = try await Blocking.run {
            try RollbackPlan.make(
                configuration, stores: stores, logger: logger, lastHealthy: lastHealthy, alreadyTried: [], appControl: appControl)
        }
        let guardRefusal: Result<String?, any Error> = await Blocking.run {
            Result {
                configuration.loopGuard.refusal(
                    at: try storage.currentTime(), history: try RollbackHistoryStore(storage: storage).read().history)
            }
        }
        var lines = ["Rollback plan for \(configuration.restore.store.description) (nothing is changed)"]
        lines += await plan.lines { entry in await versionProblem(entry, code: configuration.code, appControl: appControl) }
        switch guardRefusal {
        case .success(let refusal?): lines.append("Loop guard: a rollback now would be refused: \(refusal)")
        case .success(nil): lines.append("Loop guard: a rollback now is allowed")
        case .failure(let error): lines.append("Loop guard: every rollback would fail now: \(error)")
        }
        return lines
    }
}
