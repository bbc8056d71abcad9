import Foundation
import Testing

@testable import BackupCore

/// Retention, table by table: which backups go, which stay and why, and when the brake refuses the plan.
struct RetentionRulesTests {
    static let now = Date(timeIntervalSince1970: 1_736_951_400)  // 2025-01-15T14:30:00Z (a Wednesday)
    static let day: TimeInterval = 86_400

    /// One backup: its age in days (negative: dated ahead) and what is known of it.
    struct Backup: Sendable {
        var days: Double
        var kind: RetentionCandidate.Kind = .regular
        var verification: RetentionCandidate.Verification = .passed
        var pinned = false
        var stores: [String] = ["volume"]
    }

    struct Case: Sendable, CustomTestStringConvertible {
        let label: String
        let backups: [Backup]
        var policy = RetentionPolicy()
        /// Indexes (into `backups`) that go; every other one stays.
        let deleted: Set<Int>
        /// Expected reasons, by index, where the case is about the reason.
        var reasons: [Int: RetentionReason] = [:]
        var refused = false
        var testDescription: String { label }
    }

    static func daily(_ ages: [Double], verification: RetentionCandidate.Verification = .passed) -> [Backup] {
        ages.map { Backup(days: $0, verification: verification) }
    }

    static let cases: [Case] = [
        .init(label: "nothing in the store: nothing to do", backups: [], deleted: []),
        .init(
            label: "only backups older than BACKUP_RETENTION_DAYS go; the newest three verified stay",
            backups: daily([1, 2, 3, 10, 29, 31, 45, 60]), deleted: [5, 6, 7],
            reasons: [
                5: .expired(ageDays: 31, retentionDays: 30), 4: .withinRetention(ageDays: 29, retentionDays: 30),
                0: .newestVerified(rank: 1, of: 3),
            ]),
        .init(
            label: "the newest KEEP_MIN verified backups stay however old",
            backups: daily([40, 50, 60, 70, 80]), deleted: [3, 4],
            reasons: [2: .newestVerified(rank: 3, of: 3), 3: .expired(ageDays: 70, retentionDays: 30)]),
        .init(
            label: "BACKUP_KEEP_MIN=1 keeps one",
            backups: daily([40, 50, 60]), policy: .init(keepMin: 1), deleted: [1, 2]),
        .init(
            label: "unverified newer backups are not counted in KEEP_MIN: the old verified ones stay",
            backups: [
                .init(days: 1, verification: .none), .init(days: 2, verification: .none),
                .init(days: 3, verification: .none),
                .init(days: 40), .init(days: 50), .init(days: 60), .init(days: 70),
            ],
            deleted: [6], reasons: [3: .newestVerified(rank: 1, of: 3), 6: .expired(ageDays: 70, retentionDays: 30)]),
        .init(
            label: "failing backups never make retention delete the last good ones",
            backups: [
                .init(days: 1, verification: .failed), .init(days: 2, verification: .failed),
                .init(days: 35, verification: .none), .init(days: 40, verification: .none),
                .init(days: 50, verification: .none),
            ],
            deleted: [], reasons: [4: .noNewerVerified, 0: .withinRetention(ageDays: 1, retentionDays: 30)]),
        .init(
            label: "an old unverified backup goes once a newer verified one exists",
            backups: [.init(days: 1), .init(days: 40, verification: .none), .init(days: 50, verification: .failed)],
            deleted: [1, 2]),
        .init(
            label: "an old backup newer than every verified one stays (no newer verified backup)",
            backups: [.init(days: 33, verification: .none), .init(days: 60), .init(days: 90, verification: .none)],
            policy: .init(keepMin: 1), deleted: [2], reasons: [0: .noNewerVerified, 1: .newestVerified(rank: 1, of: 1)]),
        .init(
            label: "a pinned backup stays whatever its age",
            backups: [
                .init(days: 1), .init(days: 2), .init(days: 3), .init(days: 400, pinned: true), .init(days: 401),
            ],
            deleted: [4], reasons: [3: .pinned]),
        .init(
            label: "a pinned backup that failed verification stays too",
            backups: daily([1, 2, 3]) + [.init(days: 90, verification: .failed, pinned: true)], deleted: [],
            reasons: [3: .pinned]),
        .init(
            label: "a safety backup stays SAFETY_RETENTION_DAYS, then goes, and never counts as verified",
            backups: [
                .init(days: 1), .init(days: 2), .init(days: 3), .init(days: 5, kind: .safety),
                .init(days: 9, kind: .safety),
                .init(days: 0.5, kind: .safety),
            ],
            deleted: [4],
            reasons: [
                3: .safetyWithinRetention(ageDays: 5, retentionDays: 7),
                4: .safetyExpired(ageDays: 9, retentionDays: 7),
                0: .newestVerified(rank: 1, of: 3),
            ]),
        .init(
            label: "SAFETY_RETENTION_DAYS longer than the backups' retention keeps the safety backup",
            backups: daily([1, 2, 3]) + [.init(days: 40, kind: .safety)], policy: .init(safetyRetentionDays: 60),
            deleted: []),
        .init(
            label: "a labelled backup ages like a regular one and counts as verified",
            backups: [
                .init(days: 1, kind: .labelled), .init(days: 2), .init(days: 3), .init(days: 31, kind: .labelled),
            ],
            deleted: [3], reasons: [0: .newestVerified(rank: 1, of: 3)]),
        .init(
            label: "a shell-script archive is aged by its name and never counts as verified",
            backups: [
                .init(days: 1), .init(days: 2), .init(days: 3), .init(days: 40, kind: .legacy, verification: .none),
                .init(days: 10, kind: .legacy, verification: .none),
            ],
            deleted: [3]),
        .init(
            label: "shell-script archives alone: none is verified, all stay",
            backups: [
                .init(days: 40, kind: .legacy, verification: .none),
                .init(days: 80, kind: .legacy, verification: .none),
            ],
            deleted: []),
        .init(
            label: "a name dated ahead of the store's clock stays and is not the newest verified",
            backups: [.init(days: -30), .init(days: 40), .init(days: 50)], policy: .init(keepMin: 1), deleted: [2],
            reasons: [0: .datedAhead(seconds: 30 * day), 1: .newestVerified(rank: 1, of: 1)]),
        .init(
            label: "BACKUP_KEEP_DAILY keeps the newest of each of the most recent days",
            backups: daily([31, 31.5, 32, 33, 34, 35]), policy: .init(keepDaily: 3, keepMin: 1), deleted: [1, 4, 5],
            reasons: [
                2: .keptPeriod(period: "daily", bucket: "2024-12-14"),
                1: .expired(ageDays: 31, retentionDays: 30),
            ]),
        .init(
            label: "BACKUP_KEEP_WEEKLY keeps the newest of each of the most recent ISO weeks",
            // 2025-01-15 is a Wednesday: 40 → Fri 2024-12-06 (W49), 42 and 43 → W49 too, 47 → W48, 60 → W46.
            backups: daily([40, 42, 43, 47, 60]), policy: .init(keepWeekly: 2, keepMin: 1), deleted: [1, 2, 4],
            reasons: [3: .keptPeriod(period: "weekly", bucket: "2024-W48")]),
        .init(
            label: "BACKUP_KEEP_MONTHLY keeps the newest of each of the most recent months",
            backups: daily([40, 50, 70, 80, 100, 200]), policy: .init(keepMonthly: 3, keepMin: 1), deleted: [2, 4, 5],
            reasons: [
                1: .keptPeriod(period: "monthly", bucket: "2024-11"),
                3: .keptPeriod(period: "monthly", bucket: "2024-10"),
            ]),
        .init(
            label: "a backup that failed verification never fills a period slot",
            backups: [.init(days: 1), .init(days: 40, verification: .failed), .init(days: 41)],
            policy: .init(keepDaily: 0, keepMonthly: 1, keepMin: 1), deleted: [1, 2]),
        .init(
            label: "grandfather-father-son together: days, then weeks, then months",
            backups: daily([31, 32, 38, 45, 70, 100, 130]),
            policy: .init(keepDaily: 1, keepWeekly: 2, keepMonthly: 4, keepMin: 1),
            deleted: [1, 3]),
        .init(
            label: "the brake: a plan deleting every backup one store holds is refused",
            backups: [
                .init(days: 1), .init(days: 2), .init(days: 3),
                .init(days: 40, stores: ["volume", "bucket"]), .init(days: 50, stores: ["volume", "bucket"]),
            ],
            deleted: [], refused: true),
        .init(
            label: "no brake while the bucket keeps one backup",
            backups: [
                .init(days: 1, stores: ["volume", "bucket"]), .init(days: 2), .init(days: 3),
                .init(days: 40, stores: ["volume", "bucket"]),
            ],
            deleted: [3]),
    ]

    @Test("retention keeps or deletes each backup", arguments: cases)
    func table(_ testCase: Case) {
        let candidates = testCase.backups.enumerated().map { index, backup in
            RetentionCandidate(
                fileName: "b\(index)", date: Self.now.addingTimeInterval(-backup.days * Self.day), kind: backup.kind,
                verification: backup.verification, pinned: backup.pinned, stores: backup.stores)
        }
        let plan = RetentionRules.plan(candidates, now: Self.now, policy: testCase.policy)
        #expect(plan.decisions.count == candidates.count)
        #expect((plan.refusal != nil) == testCase.refused, "\(plan.refusal ?? "no refusal")")
        if testCase.refused { #expect(plan.refusal?.contains("would delete all") == true) }
        let deleted = Set(plan.toDelete.map { Int($0.fileName.dropFirst())! })
        #expect(
            deleted == testCase.deleted,
            "\(plan.decisions.map { "\($0.fileName): \($0.keep ? "keep" : "delete") (\($0.reason))" })")
        for (index, reason) in testCase.reasons {
            #expect(plan.decisions.first { $0.fileName == "b\(index)" }?.reason == reason, "b\(index)")
        }
    }

    @Test("the brake refuses a plan that deletes every backup, and names the count")
    func brakeOnEverything() {
        let decisions = (0..<4).map { index in
            RetentionDecision(
                candidate: .init(fileName: "b\(index)", date: Self.now), keep: false,
                reason: .expired(ageDays: 40, retentionDays: 30))
        }
        #expect(
            RetentionRules.brake(decisions)
                == "the current configuration would delete all 4 existing backups. Refusing to do so")
        #expect(RetentionRules.brake(Array(decisions.prefix(0))) == nil)
    }

    @Test("the policy is read from the environment with its defaults, and bad values are refused")
    func policyLoading() throws {
        let defaults = try RetentionPolicy.load(ConfigurationValues(environment: [:], readFile: { _ in "" }))
        #expect(
            defaults == RetentionPolicy(retentionDays: 30, keepMin: 3, safetyRetentionDays: 7, futureAllowance: 300))
        let set = try RetentionPolicy.load(
            ConfigurationValues(
                environment: ["BACKUP_RETENTION_DAYS": "7", "BACKUP_KEEP_DAILY": "7", "BACKUP_KEEP_MONTHLY": "12"],
                readFile: { _ in "" }))
        #expect(set.retentionDays == 7 && set.keepDaily == 7 && set.keepMonthly == 12)
        for bad in [
            ["BACKUP_RETENTION_DAYS": "0"], ["BACKUP_RETENTION_DAYS": "-3"], ["BACKUP_KEEP_MIN": "0"],
            ["BACKUP_KEEP_WEEKLY": "x"],
        ] {
            #expect(throws: ContingencyError.self) {
                try RetentionPolicy.load(ConfigurationValues(environment: bad, readFile: { _ in "" }))
            }
        }
    }

    @Test("cleanup-job's configuration loads with its defaults: every 7 days, a day's grace")
    func cleanupConfiguration() throws {
        let configuration = try CleanupConfiguration.load(ConfigurationValues(environment: [:], readFile: { _ in "" }))
        #expect(configuration.schedule == (try Schedule.parse("7d")))
        #expect(configuration.graceSeconds == 86_400)
        #expect(configuration.policy == (try RetentionPolicy.load(ConfigurationValues(environment: [:], readFile: { _ in "" }))))
        #expect(configuration.store.prefix == "visual_backup")
        #expect(throws: ContingencyError.self) {
            try CleanupConfiguration.load(ConfigurationValues(environment: ["CLEANUP_SCHEDULE": "soon"], readFile: { _ in "" }))
        }
        let names = Set(CleanupConfiguration.settings.map(\.name))
        for name in ["BACKUP_RETENTION_DAYS", "BACKUP_KEEP_MIN", "SAFETY_RETENTION_DAYS", "CLEANUP_SCHEDULE", "CLEANUP_GRACE"] {
            #expect(names.contains(name), "--help lists \(name)")
        }
    }

    @Test("a pin's key comes from a parsed backup name; other objects in the folder are not pins")
    func pinKeys() throws {
        let name = try #require(
            BackupName.parse(fileName: "visual_backup_2025-01-15_14-30-00.tar.gz", prefix: "visual_backup"))
        #expect(BackupPin.key(for: name) == ".contingency/pins/visual_backup_2025-01-15_14-30-00.tar.gz.json")
        #expect(
            BackupPin.fileName(ofPinObject: "visual_backup_2025-01-15_14-30-00.tar.gz.json", prefix: "visual_backup")
                == "visual_backup_2025-01-15_14-30-00.tar.gz")
        #expect(
            BackupPin.fileName(ofPinObject: "other_2025-01-15_14-30-00.tar.gz.json", prefix: "visual_backup") == nil)
        #expect(
            BackupPin.fileName(ofPinObject: "visual_backup_2025-01-15_14-30-00.tar.gz", prefix: "visual_backup") == nil)
    }
}
