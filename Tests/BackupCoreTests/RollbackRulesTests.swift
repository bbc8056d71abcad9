import Foundation
import Testing

@testable import BackupCore

/// The rollback's pure rules, table by table: which backup is the target, when an incident opens, what the
/// loop guard allows.
struct RollbackTargetTests {
    static let now = Date(timeIntervalSince1970: 1_736_951_400)  // 2025-01-15T14:30:00Z
    static let lastHealthy = now.addingTimeInterval(-1800)

    /// One backup: seconds from now, and what is known of it.
    struct Backup: Sendable {
        var offset: TimeInterval
        var authenticity: Authenticity = .notChecked
        var kind: BackupKind? = nil
        var label: String? = nil
        var health: HealthAtStart.State? = nil
    }

    struct Case: Sendable, CustomTestStringConvertible {
        let label: String
        let backups: [Backup]
        var lastHealthy: Date? = RollbackTargetTests.lastHealthy
        var tried: Set<Int> = []
        /// Index of the target (the first eligible), nil for none.
        let target: Int?
        /// The expected reason for each backup passed over that is newer than the target.
        let skips: [Int: RollbackTarget.Skip]
        var testDescription: String { label }
    }

    static let cases: [Case] = [
        .init(label: "the newest before the last healthy probe", backups: [.init(offset: -7200), .init(offset: -3600)], target: 1, skips: [:]),
        .init(
            label: "a backup after the last healthy probe may hold the broken state",
            backups: [.init(offset: -3600), .init(offset: -600)], target: 0, skips: [1: .afterLastHealthy(lastHealthy)]),
        .init(
            label: "a safety backup is never a target", backups: [.init(offset: -3600), .init(offset: -2000, kind: .safety)], target: 0,
            skips: [1: .safety]),
        .init(
            label: "a labelled backup is never a target",
            backups: [.init(offset: -3600), .init(offset: -2000, label: "investigation")], target: 0, skips: [1: .labelled("investigation")]),
        .init(
            label: "dated in the future", backups: [.init(offset: -3600), .init(offset: 86_400)], lastHealthy: nil, target: 0,
            skips: [1: .future(seconds: 86_400)]),
        .init(
            label: "not genuine, unsigned", backups: [.init(offset: -5000), .init(offset: -4000, authenticity: .unsigned), .init(offset: -3000, authenticity: .notGenuine("bad"))],
            target: 0, skips: [1: .notTrusted(.unsigned), 2: .notTrusted(.notGenuine("bad"))]),
        .init(
            label: "its own record says the app was unhealthy", backups: [.init(offset: -5000, health: .healthy), .init(offset: -4000, health: .unhealthy)],
            target: 0, skips: [1: .unhealthyAtStart]),
        .init(label: "unknown health at start is not a reason", backups: [.init(offset: -4000, health: .unknown)], target: 0, skips: [:]),
        .init(
            label: "never the same target twice for one incident", backups: [.init(offset: -5000), .init(offset: -4000)], tried: [1], target: 0,
            skips: [1: .alreadyTried]),
        .init(
            label: "no healthy probe known: the backups' own records speak",
            backups: [.init(offset: -600, health: .healthy), .init(offset: -60, health: .unhealthy)], lastHealthy: nil, target: 0,
            skips: [1: .unhealthyAtStart]),
        .init(
            label: "corrupt-free but all excluded: none",
            backups: [.init(offset: -60), .init(offset: -30, kind: .safety)], target: nil, skips: [0: .afterLastHealthy(lastHealthy), 1: .safety]),
        .init(label: "nothing at all", backups: [], target: nil, skips: [:]),
    ]

    @Test(arguments: cases)
    func choosesTheTarget(_ example: Case) {
        let names = example.backups.map {
            BackupName(prefix: "visual_backup", date: Self.now.addingTimeInterval($0.offset), compression: .gzip, encrypted: false)
        }
        let candidates = zip(names, example.backups).map { name, backup in
            RollbackTarget.Candidate(
                name: name, authenticity: backup.authenticity, kind: backup.kind, label: backup.label,
                health: backup.health.map { HealthAtStart(state: $0, lastProbe: nil, lastHealthy: nil, consecutiveFailures: 0, sidecars: 1) })
        }
        let rules = RollbackTarget.Rules(
            lastHealthy: example.lastHealthy, now: Self.now, futureAllowance: 300,
            alreadyTried: Set(example.tried.map { names[$0].fileName }))
        let ranked = RollbackTarget.rank(candidates, rules: rules)
        #expect(ranked.map(\.candidate.name) == names.sorted(by: >), "newest first")
        let target = ranked.first { $0.skip == nil }?.candidate.name
        #expect(target == example.target.map { names[$0] })
        for (index, skip) in example.skips {
            #expect(ranked.first { $0.candidate.name == names[index] }?.skip == skip, "backup \(index)")
        }
    }
}

struct ProbeTrackerTests {
    static let start = Date(timeIntervalSince1970: 1_736_951_400)

    /// Probes (true = healthy) one second apart, and the transitions expected.
    struct Case: Sendable, CustomTestStringConvertible {
        let label: String
        var startPeriod: TimeInterval = 0
        let probes: [Bool]
        let incidents: Int
        var testDescription: String { label }
    }

    static let cases: [Case] = [
        .init(label: "three failures open one incident", probes: [true, false, false, false], incidents: 1),
        .init(label: "more failures do not open another", probes: [false, false, false, false, false, false, false], incidents: 1),
        .init(label: "flapping never opens one", probes: [false, false, true, false, false, true, false, false, true], incidents: 0),
        .init(label: "a recovery closes it; a new outage opens a new one", probes: [false, false, false, true, false, false, false], incidents: 2),
        .init(label: "failures in the start period are not counted", startPeriod: 2.5, probes: [false, false, false, false, false, false], incidents: 1),
        .init(label: "start period: only two counted", startPeriod: 2.5, probes: [false, false, false, false], incidents: 0),
        .init(label: "a healthy probe ends the start period", startPeriod: 100, probes: [true, false, false, false], incidents: 1),
    ]

    @Test(arguments: cases)
    func countsIncidents(_ example: Case) {
        var tracker = ProbeTracker(threshold: 3, startPeriod: example.startPeriod, started: Self.start)
        var incidents = 0
        for (index, healthy) in example.probes.enumerated() {
            if case .incident = tracker.record(healthy: healthy, at: Self.start.addingTimeInterval(Double(index))) { incidents += 1 }
        }
        #expect(incidents == example.incidents)
    }

    @Test func recoveryIsReported() {
        var tracker = ProbeTracker(threshold: 2, startPeriod: 0, started: Self.start)
        #expect(tracker.record(healthy: false, at: Self.start) == .failing(1))
        #expect(tracker.record(healthy: false, at: Self.start.addingTimeInterval(1)) == .incident(2))
        #expect(tracker.record(healthy: false, at: Self.start.addingTimeInterval(2)) == .stillFailing(3))
        #expect(tracker.record(healthy: true, at: Self.start.addingTimeInterval(3)) == .recovered(afterFailures: 3, closedIncident: true))
        #expect(tracker.lastHealthy == Self.start.addingTimeInterval(3))
        #expect(tracker.consecutiveFailures == 0)
    }

    @Test func incidentIDsAreTheSameOnEverySidecar() {
        let healthy = Date(timeIntervalSince1970: 1_736_951_400)
        #expect(IncidentID.make(lastHealthy: healthy) == "rollback-20250115T143000Z")
        #expect(IncidentID.make(lastHealthy: healthy) == IncidentID.make(lastHealthy: healthy.addingTimeInterval(0.4)))
        #expect(IncidentID.make(lastHealthy: healthy) != IncidentID.make(lastHealthy: healthy.addingTimeInterval(1)))
        #expect(IncidentID.make(lastHealthy: nil) == "rollback-never-healthy")
        #expect(IncidentID.believable(healthy, now: healthy) == healthy)
        #expect(IncidentID.believable(healthy.addingTimeInterval(299), now: healthy) != nil, "within the clock allowance")
        #expect(IncidentID.believable(healthy.addingTimeInterval(3600), now: healthy) == nil, "an hour ahead: not believed")
    }
}

struct LoopGuardTests {
    static let now = Date(timeIntervalSince1970: 1_736_951_400)

    @Test(arguments: [
        (max: 1, ago: [TimeInterval](), allowed: true),
        (max: 1, ago: [600], allowed: false),
        (max: 1, ago: [3700], allowed: true),
        (max: 2, ago: [600], allowed: true),
        (max: 2, ago: [600, 1200], allowed: false),
        (max: 2, ago: [600, 4000], allowed: true),
        (max: 1, ago: [-86_400], allowed: true),  // an entry dated a day ahead of the store's clock: not counted
        (max: 1, ago: [-60], allowed: false),  // a minute ahead: within the clock allowance, counted
    ])
    func boundsRollbacksPerWindow(_ example: (max: Int, ago: [TimeInterval], allowed: Bool)) {
        let history = RollbackHistory(
            rollbacks: example.ago.map { .init(request: "r\($0)", incident: "i", target: "t", started: Self.now.addingTimeInterval(-$0)) })
        let refusal = LoopGuard(max: example.max, window: 3600).refusal(at: Self.now, history: history)
        #expect((refusal == nil) == example.allowed)
        if let refusal { #expect(refusal.contains("ROLLBACK_MAX")) }
    }

    @Test func healthAtStartSumsUpFreshHeartbeats() {
        let fresh = HealthHeartbeat(
            sidecar: "a", url: "u", interval: 10, started: Self.now, lastProbe: Self.now.addingTimeInterval(-5),
            lastResult: .init(healthy: true, status: 200, reason: nil, seconds: 0.1), lastHealthy: Self.now.addingTimeInterval(-5))
        var failing = fresh
        failing.sidecar = "b"
        failing.lastResult = .init(healthy: false, status: 500, reason: "HTTP 500", seconds: 0.1)
        failing.consecutiveFailures = 2
        failing.lastHealthy = Self.now.addingTimeInterval(-100)
        var stale = fresh
        stale.sidecar = "c"
        stale.lastProbe = Self.now.addingTimeInterval(-3600)
        stale.lastResult = failing.lastResult
        #expect(HealthAtStart.summarize([fresh], at: Self.now).state == .healthy)
        #expect(HealthAtStart.summarize([fresh, stale], at: Self.now).state == .healthy, "a stale heartbeat does not speak")
        let both = HealthAtStart.summarize([fresh, failing], at: Self.now)
        #expect(both.state == .unhealthy)
        #expect(both.consecutiveFailures == 2)
        #expect(both.lastHealthy == Self.now.addingTimeInterval(-5))
        #expect(HealthAtStart.summarize([stale], at: Self.now).state == .unknown)
        #expect(HealthAtStart.summarize([], at: Self.now).state == .unknown)
    }
}
