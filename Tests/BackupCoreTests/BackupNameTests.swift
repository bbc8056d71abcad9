import Foundation
import Testing

@testable import BackupCore

/// Dates are built with Foundation's ISO 8601 parser, independently of `BackupName`'s own calendar code.
private func utc(_ iso: String) -> Date {
    let formatter = ISO8601DateFormatter()
    if iso.contains(".") { formatter.formatOptions.insert(.withFractionalSeconds) }
    guard let date = formatter.date(from: iso) else { fatalError("bad ISO 8601 literal \(iso)") }
    return date
}

private let prefix = "visual_backup"

struct BackupNameTests {
    // MARK: - Formatting

    struct NameRow: Sendable, CustomTestStringConvertible {
        let iso: String
        let compression: Compression
        let encrypted: Bool
        let fileName: String
        var testDescription: String { fileName }
    }

    @Test(arguments: [
        NameRow(iso: "2025-01-15T14:30:00Z", compression: .gzip, encrypted: false,
                fileName: "visual_backup_2025-01-15_14-30-00.tar.gz"),
        NameRow(iso: "2025-01-15T14:30:00Z", compression: .zstd, encrypted: false,
                fileName: "visual_backup_2025-01-15_14-30-00.tar.zst"),
        NameRow(iso: "2025-01-15T14:30:00Z", compression: .gzip, encrypted: true,
                fileName: "visual_backup_2025-01-15_14-30-00.tar.gz.age"),
        NameRow(iso: "2025-01-15T14:30:00Z", compression: .zstd, encrypted: true,
                fileName: "visual_backup_2025-01-15_14-30-00.tar.zst.age"),
        // Single-digit fields are zero padded.
        NameRow(iso: "2025-03-05T03:04:05Z", compression: .gzip, encrypted: false,
                fileName: "visual_backup_2025-03-05_03-04-05.tar.gz"),
        NameRow(iso: "2024-02-29T00:00:00Z", compression: .gzip, encrypted: false,
                fileName: "visual_backup_2024-02-29_00-00-00.tar.gz"),
        NameRow(iso: "2025-12-31T23:59:59Z", compression: .zstd, encrypted: false,
                fileName: "visual_backup_2025-12-31_23-59-59.tar.zst"),
        // A time given in another zone is written in UTC.
        NameRow(iso: "2025-01-15T23:30:00-05:00", compression: .gzip, encrypted: false,
                fileName: "visual_backup_2025-01-16_04-30-00.tar.gz"),
    ])
    func formatsFileName(_ row: NameRow) {
        let name = BackupName(prefix: prefix, date: utc(row.iso), compression: row.compression, encrypted: row.encrypted)
        #expect(name.fileName == row.fileName)
        #expect(name.description == row.fileName)
        #expect(name.manifestName == row.fileName + ".json")
    }

    @Test(arguments: [
        ("2025-01-15T14:30:00Z", "visual_backup_2025-01-15_14-30-00", "2025-01-15_14-30-00"),
        ("2000-01-01T00:00:00Z", "visual_backup_2000-01-01_00-00-00", "2000-01-01_00-00-00"),
        ("2038-01-19T03:14:08Z", "visual_backup_2038-01-19_03-14-08", "2038-01-19_03-14-08"),
    ])
    func stemAndTimestamp(_ row: (String, String, String)) {
        for compression in Compression.allCases {
            for encrypted in [false, true] {
                let name = BackupName(prefix: prefix, date: utc(row.0), compression: compression, encrypted: encrypted)
                // The stem (the archive's top directory) never carries the extension or the .age suffix.
                #expect(name.stem == row.1)
                #expect(name.timestamp == row.2)
            }
        }
    }

    @Test func fractionalSecondsAreDroppedNotRounded() {
        let whole = utc("2025-01-15T14:30:00Z")
        let late = BackupName(prefix: prefix, date: whole.addingTimeInterval(0.999), compression: .gzip)
        #expect(late.fileName == "visual_backup_2025-01-15_14-30-00.tar.gz")
        #expect(late.date == whole)
        // Equal names are equal values, whatever fraction of a second they were made from.
        #expect(late == BackupName(prefix: prefix, date: whole.addingTimeInterval(0.2), compression: .gzip))
    }

    @Test(arguments: [
        (Compression.gzip, "tar.gz"),
        (Compression.zstd, "tar.zst"),
    ])
    func compressionExtensions(_ row: (Compression, String)) {
        #expect(row.0.fileExtension == row.1)
    }

    // MARK: - Parsing

    @Test(arguments: [
        ("visual_backup", "visual_backup_2025-01-15_14-30-00.tar.gz", "2025-01-15T14:30:00Z", Compression.gzip, false),
        ("visual_backup", "visual_backup_2025-01-15_14-30-00.tar.zst", "2025-01-15T14:30:00Z", .zstd, false),
        ("visual_backup", "visual_backup_2025-01-15_14-30-00.tar.gz.age", "2025-01-15T14:30:00Z", .gzip, true),
        ("visual_backup", "visual_backup_2025-01-15_14-30-00.tar.zst.age", "2025-01-15T14:30:00Z", .zstd, true),
        ("visual_backup", "visual_backup_2024-02-29_23-59-59.tar.gz", "2024-02-29T23:59:59Z", .gzip, false),
        ("visual", "visual_2025-01-15_14-30-00.tar.gz", "2025-01-15T14:30:00Z", .gzip, false),
        ("db-prod.v2", "db-prod.v2_2030-06-01_00-00-00.tar.zst", "2030-06-01T00:00:00Z", .zstd, false),
        ("a_b", "a_b_2025-01-15_14-30-00.tar.gz", "2025-01-15T14:30:00Z", .gzip, false),
    ])
    func parsesArchiveNames(_ row: (String, String, String, Compression, Bool)) throws {
        let name = try #require(BackupName.parse(fileName: row.1, prefix: row.0))
        #expect(name.prefix == row.0)
        #expect(name.date == utc(row.2))
        #expect(name.compression == row.3)
        #expect(name.encrypted == row.4)
        #expect(name.fileName == row.1)
    }

    @Test(arguments: [
        "2025-01-15T14:30:00Z", "2025-01-15T14:30:00.75Z", "1999-12-31T23:59:59Z", "2024-02-29T12:00:00Z",
        "2100-03-01T00:00:00Z", "1970-01-01T00:00:00Z",
    ])
    func formatThenParseRoundTrips(_ iso: String) throws {
        for compression in Compression.allCases {
            for encrypted in [false, true] {
                let name = BackupName(prefix: prefix, date: utc(iso), compression: compression, encrypted: encrypted)
                let parsed = try #require(BackupName.parse(fileName: name.fileName, prefix: prefix))
                #expect(parsed == name)
                #expect(parsed.fileName == name.fileName)
            }
        }
    }

    @Test(arguments: [
        // Not this prefix.
        "other_backup_2025-01-15_14-30-00.tar.gz",
        "VISUAL_BACKUP_2025-01-15_14-30-00.tar.gz",
        "visual_backupx_2025-01-15_14-30-00.tar.gz",
        "visual_backup-2025-01-15_14-30-00.tar.gz",
        "xvisual_backup_2025-01-15_14-30-00.tar.gz",
        // A longer prefix of which ours is a prefix.
        "visual_backup_old_2025-01-15_14-30-00.tar.gz",
        // A path is not a file name.
        "/backups/visual_backup_2025-01-15_14-30-00.tar.gz",
        // Manifests and temporary files.
        "visual_backup_2025-01-15_14-30-00.tar.gz.json",
        "visual_backup_2025-01-15_14-30-00.tar.zst.age.json",
        "visual_backup_2025-01-15_14-30-00.tar.gz.partial",
        "visual_backup_2025-01-15_14-30-00.tar.gz.age.partial",
        ".visual_backup_2025-01-15_14-30-00.tar.gz.partial",
        // Impossible dates and times (Calendar would roll them over).
        "visual_backup_2025-02-30_14-30-00.tar.gz",
        "visual_backup_2025-02-29_14-30-00.tar.gz",
        "visual_backup_2025-04-31_00-00-00.tar.gz",
        "visual_backup_2025-13-01_00-00-00.tar.gz",
        "visual_backup_2025-00-10_00-00-00.tar.gz",
        "visual_backup_2025-01-00_00-00-00.tar.gz",
        "visual_backup_2025-01-15_24-00-00.tar.gz",
        "visual_backup_2025-01-15_14-60-00.tar.gz",
        "visual_backup_2025-01-15_14-30-60.tar.gz",
        // Wrong separators or field widths.
        "visual_backup_2025-01-15T14-30-00.tar.gz",
        "visual_backup_2025-01-15_14:30:00.tar.gz",
        "visual_backup_2025_01_15_14_30_00.tar.gz",
        "visual_backup_2025-01-15-14-30-00.tar.gz",
        "visual_backup_2025-1-15_14-30-00.tar.gz",
        "visual_backup_2025-01-15_14-30-0.tar.gz",
        "visual_backup_2025-01-15_14-30-001.tar.gz",
        "visual_backup_20250115_143000.tar.gz",
        "visual_backup_+025-01-15_14-30-00.tar.gz",
        "visual_backup_２０２５-01-15_14-30-00.tar.gz",
        // Missing, unknown or extra suffixes.
        "visual_backup_2025-01-15_14-30-00",
        "visual_backup_2025-01-15_14-30-00.",
        "visual_backup_2025-01-15_14-30-00.tar",
        "visual_backup_2025-01-15_14-30-00.gz",
        "visual_backup_2025-01-15_14-30-00.age",
        "visual_backup_2025-01-15_14-30-00.tar.bz2",
        "visual_backup_2025-01-15_14-30-00.TAR.GZ",
        "visual_backup_2025-01-15_14-30-00.tar.gz.bak",
        "visual_backup_2025-01-15_14-30-00.tar.gz.age.age",
        "visual_backup_2025-01-15_14-30-00.age.tar.gz",
        "visual_backup_2025-01-15_14-30-00.tar.gz.tar.gz",
        "visual_backup_2025-01-15_14-30-00_1.tar.gz",
        "visual_backup_2025-01-15_14-30-00.tar.gz ",
        "visual_backup_2025-01-15_14-30-00.tar.gz/",
        // Degenerate.
        "",
        "visual_backup",
        "visual_backup_",
        "visual_backup_.tar.gz",
    ])
    func parseRejects(_ fileName: String) {
        #expect(BackupName.parse(fileName: fileName, prefix: prefix) == nil)
    }

    @Test func aPrefixThatIsAPrefixOfAnotherDoesNotClaimItsArchives() throws {
        let long = "visual_backup_2025-01-15_14-30-00.tar.gz"
        let short = "visual_2025-01-15_14-30-00.tar.gz"
        #expect(BackupName.parse(fileName: long, prefix: "visual") == nil)
        #expect(BackupName.parse(fileName: short, prefix: "visual_backup") == nil)
        // Each still parses with its own prefix.
        #expect(try #require(BackupName.parse(fileName: long, prefix: "visual_backup")).prefix == "visual_backup")
        #expect(try #require(BackupName.parse(fileName: short, prefix: "visual")).prefix == "visual")
    }

    @Test(arguments: [
        ("2025-01-15_14-30-00", "2025-01-15T14:30:00Z"),
        ("2024-02-29_00-00-00", "2024-02-29T00:00:00Z"),
        ("2000-02-29_12-00-00", "2000-02-29T12:00:00Z"),
        ("1970-01-01_00-00-00", "1970-01-01T00:00:00Z"),
        ("2025-12-31_23-59-59", "2025-12-31T23:59:59Z"),
    ])
    func timestampsParse(_ row: (String, String)) throws {
        let date = try #require(BackupName.parseTimestamp(row.0))
        #expect(date == utc(row.1))
        #expect(BackupName.formatTimestamp(date) == row.0)
    }

    @Test(arguments: ["2100-02-29_00-00-00", "1900-02-29_00-00-00", "2025-06-31_00-00-00", "2025-01-15_14-30-00 ", ""])
    func impossibleTimestampsAreRefused(_ text: String) {
        #expect(BackupName.parseTimestamp(text) == nil)
    }

    // MARK: - Ordering

    @Test func ordersOldestToNewest() throws {
        let names = [
            "visual_backup_2025-01-15_14-30-00.tar.gz",
            "visual_backup_2024-12-31_23-59-59.tar.zst",
            "visual_backup_2025-01-15_14-30-01.tar.gz.age",
            "visual_backup_2023-06-01_00-00-00.tar.gz",
            "visual_backup_2025-01-09_00-00-00.tar.gz",  // earlier than 01-15 although "9" > "1" at that spot
        ].map { BackupName.parse(fileName: $0, prefix: prefix) }
        let parsed = try names.map { try #require($0) }

        #expect(parsed.sorted().map(\.timestamp) == [
            "2023-06-01_00-00-00", "2024-12-31_23-59-59", "2025-01-09_00-00-00", "2025-01-15_14-30-00",
            "2025-01-15_14-30-01",
        ])
        #expect(parsed.max()?.fileName == "visual_backup_2025-01-15_14-30-01.tar.gz.age")
        #expect(parsed.min()?.fileName == "visual_backup_2023-06-01_00-00-00.tar.gz")
    }

    @Test func orderingIsByDateBeforeName() {
        // "a…" sorts before "b…" as text, but the "b" backup is older.
        let older = BackupName(prefix: "b", date: utc("2025-01-01T00:00:00Z"), compression: .zstd)
        let newer = BackupName(prefix: "a", date: utc("2025-01-02T00:00:00Z"), compression: .gzip)
        #expect(older < newer)
        #expect(!(newer < older))
    }

    @Test func sameSecondNamesStillHaveAStrictOrder() {
        let date = utc("2025-01-15T14:30:00Z")
        let gzip = BackupName(prefix: prefix, date: date, compression: .gzip)
        let zstd = BackupName(prefix: prefix, date: date, compression: .zstd)
        let age = BackupName(prefix: prefix, date: date, compression: .gzip, encrypted: true)
        for (a, b) in [(gzip, zstd), (gzip, age), (zstd, age)] {
            #expect(a != b)
            #expect((a < b) != (b < a))
        }
        #expect(!(gzip < gzip))
    }

    // MARK: - Names from paths

    @Test(arguments: [
        ("/backups/visual_backup_2025-01-15_14-30-00.tar.gz", "visual_backup_2025-01-15_14-30-00.tar.gz"),
        ("visual_backup_2025-01-15_14-30-00.tar.gz", "visual_backup_2025-01-15_14-30-00.tar.gz"),
        ("/backups/visual_backup_2025-01-15_14-30-00.tar.gz/", "visual_backup_2025-01-15_14-30-00.tar.gz"),
        ("/backups/x.tar.gz", "x.tar.gz"),
        ("x.tar.gz", "x.tar.gz"),
        ("/backups/x.tar.gz/", "x.tar.gz"),
        ("backups/sub/x.tar.gz", "x.tar.gz"),
        ("//backups//x.tar.gz", "x.tar.gz"),
        ("./x.tar.gz", "x.tar.gz"),
    ])
    func fileNameFromNameOrPath(_ row: (String, String)) {
        #expect(BackupName.fileName(fromNameOrPath: row.0) == row.1)
    }

    @Test func aPathGivenAsLatestBackupParsesAfterTakingItsFileName() throws {
        let value = "/mnt/backups/visual_backup_2025-01-15_14-30-00.tar.zst.age/"
        let name = try #require(BackupName.parse(fileName: BackupName.fileName(fromNameOrPath: value), prefix: prefix))
        #expect(name.compression == .zstd)
        #expect(name.encrypted)
        #expect(name.date == utc("2025-01-15T14:30:00Z"))
    }
}
