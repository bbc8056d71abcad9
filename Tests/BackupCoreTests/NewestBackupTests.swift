import Foundation
import Testing

@testable import BackupCore

/// Which backup a restore takes when none is named, table by table.
struct NewestBackupTests {
    static let now = Date(timeIntervalSince1970: 1_736_951_400)  // 2025-01-15T14:30:00Z

    struct Case: Sendable, CustomTestStringConvertible {
        let label: String
        /// Seconds from now of each backup's name, and its authenticity.
        let backups: [(TimeInterval, Authenticity)]
        /// Index into `backups` of the one chosen, nil for none.
        let chosen: Int?
        let skipped: Int
        var testDescription: String { label }
    }

    static let genuine = Authenticity.genuine(keyID: "k")
    static let cases: [Case] = [
        .init(label: "the newest of several", backups: [(-3600, .notChecked), (-60, .notChecked), (-7200, .notChecked)], chosen: 1, skipped: 0),
        .init(label: "a name in 2099 is passed over", backups: [(-60, .notChecked), (2_300_000_000, .notChecked)], chosen: 0, skipped: 1),
        .init(label: "within the allowance counts", backups: [(-60, .notChecked), (299, .notChecked)], chosen: 1, skipped: 0),
        .init(label: "just past the allowance does not", backups: [(-60, .notChecked), (301, .notChecked)], chosen: 0, skipped: 1),
        .init(label: "unsigned and not genuine are passed over", backups: [(-600, genuine), (-60, .unsigned), (-30, .notGenuine("x"))], chosen: 0, skipped: 2),
        .init(label: "only forgeries: none", backups: [(-60, .unsigned), (-30, .notGenuine("x"))], chosen: nil, skipped: 2),
        .init(label: "a genuine backup dated in the future is passed over too", backups: [(-60, genuine), (86_400, genuine)], chosen: 0, skipped: 1),
        .init(label: "nothing at all", backups: [], chosen: nil, skipped: 0),
    ]

    @Test(arguments: cases)
    func chooses(_ example: Case) {
        let names = example.backups.map { BackupName(prefix: "visual_backup", date: Self.now.addingTimeInterval($0.0), compression: .gzip, encrypted: false) }
        let candidates = Array(zip(names, example.backups.map(\.1)))
        let (chosen, skipped) = NewestBackup.choose(candidates, name: \.0, authenticity: \.1, now: Self.now, allowance: 300)
        #expect(chosen?.0 == example.chosen.map { names[$0] })
        #expect(skipped.count == example.skipped)
    }
}
