import Foundation
import Testing

@testable import BackupCore

/// RESTORE_PARTS and a restore request's `parts`: what each value restores, and the values refused.
struct RestorePartsTests {
    static let accepted: [(value: String?, parts: [String])] = [
        (nil, ["database", "uploads", "env"]),
        ("", ["database", "uploads", "env"]),
        ("  ", ["database", "uploads", "env"]),
        ("uploads", ["uploads"]),
        ("env", ["env"]),
        ("database", ["database"]),
        ("uploads,database", ["database", "uploads"]),
        (" database , uploads ", ["database", "uploads"]),
        ("UPLOADS", ["uploads"]),
        ("uploads,uploads", ["uploads"]),
        ("uploads,", ["uploads"]),
        ("env,uploads,database", ["database", "uploads", "env"]),
    ]

    @Test("RESTORE_PARTS values that choose parts", arguments: accepted)
    func acceptedValues(_ value: String?, _ parts: [String]) throws {
        let parsed = try RestoreParts.parse(value)
        #expect(parsed.names == parts)
        #expect(parsed.isAll == (parts.count == 3))
        #expect(parsed.left.map(\.rawValue) == ["database", "uploads", "env"].filter { !parts.contains($0) })
    }

    static let refused: [(value: String, mentions: String)] = [
        ("files", "\"files\" is not a part"),
        ("uploads,files", "\"files\" is not a part"),
        ("database;uploads", "\"database;uploads\" is not a part"),
        ("all", "\"all\" is not a part"),
        (",", "chooses no part"),
        (" , ,", "chooses no part"),
        ("../etc", "\"../etc\" is not a part"),
        ("upl\u{1}oads", "upl\\u{1}oads"),
    ]

    @Test("RESTORE_PARTS values refused with a configuration error naming the value and the choices", arguments: refused)
    func refusedValues(_ value: String, _ mentions: String) {
        #expect {
            try RestoreParts.parse(value)
        } throws: { error in
            guard let error = error as? ContingencyError else { return false }
            return error.isConfiguration && error.description.contains(mentions) && error.description.contains("RESTORE_PARTS")
                && (mentions == "chooses no part" || error.description.contains("database, uploads, env"))
        }
    }

    @Test("A request's parts: nil is all, an empty list or an unknown name is refused")
    func requestLists() throws {
        #expect(try RestoreParts.parse(list: nil) == .all)
        #expect(try RestoreParts.parse(list: ["env", "database"]).names == ["database", "env"])
        #expect(throws: ContingencyError.self) { try RestoreParts.parse(list: []) }
        #expect(throws: ContingencyError.self) { try RestoreParts.parse(list: ["uploads", "code"]) }
        #expect(throws: ContingencyError.self) { try RestoreParts.parse(list: [""]) }
    }

    @Test("RESTORE_PARTS is read by the restore's configuration and listed in its --help settings")
    func configuration() throws {
        let base = ["DATABASE_NAME": "app", "BACKUP_DIR": "/tmp/x"]
        func values(_ environment: [String: String]) -> ConfigurationValues {
            ConfigurationValues(environment: environment) { path in throw ContingencyError.failed("no file \(path)") }
        }
        let all = try RestoreConfiguration.load(values(base))
        #expect(all.parts == .all)
        let some = try RestoreConfiguration.load(values(base.merging(["RESTORE_PARTS": "uploads"]) { $1 }))
        #expect(some.parts.names == ["uploads"])
        #expect(throws: ContingencyError.self) {
            try RestoreConfiguration.load(values(base.merging(["RESTORE_PARTS": "files"]) { $1 }))
        }
        #expect(RestoreConfiguration.settings.contains(Settings.restoreParts))
    }

    static let heartbeatAges: [(interval: Int, age: TimeInterval, fresh: Bool)] = [
        (10, 0, true), (10, 59, true), (10, 60, true), (10, 61, false),
        (60, 179, true), (60, 180, true), (60, 181, false),
        (1, 30, true), (1, 3600, false), (0, 60, true), (10, -5, true),
    ]

    @Test("A runner's heartbeat is stale past three poll intervals (at least a minute) by the store's clock", arguments: heartbeatAges)
    func runnerFreshness(_ interval: Int, _ age: TimeInterval, _ fresh: Bool) {
        let written = Date(timeIntervalSince1970: 1_800_000_000)
        let heartbeat = RunnerHeartbeat(
            runner: "r", host: "h", pid: 1, started: written, lastPoll: .distantPast, pollInterval: interval)
        #expect(heartbeat.isFresh(writtenAt: written, now: written.addingTimeInterval(age)) == fresh)
    }
}
