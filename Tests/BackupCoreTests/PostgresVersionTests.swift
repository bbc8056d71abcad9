import Testing

@testable import BackupCore

struct PostgresVersionTests {
    struct ToolLine: Sendable, CustomTestStringConvertible {
        let line: String
        let major: Int
        let minor: Int
        let shown: String
        var testDescription: String { line }
    }

    @Test(arguments: [
        ToolLine(line: "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", major: 15, minor: 18, shown: "15.18"),
        ToolLine(line: "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n", major: 15, minor: 18, shown: "15.18"),
        ToolLine(line: "pg_dump (PostgreSQL) 16.4", major: 16, minor: 4, shown: "16.4"),
        ToolLine(line: "pg_restore (PostgreSQL) 17.2 (Ubuntu 17.2-1.pgdg24.04+1)", major: 17, minor: 2, shown: "17.2"),
        ToolLine(line: "pg_dump (PostgreSQL) 10.23", major: 10, minor: 23, shown: "10.23"),
        ToolLine(line: "pg_dump (PostgreSQL) 17devel", major: 17, minor: 0, shown: "17.0"),
        ToolLine(line: "pg_dump (PostgreSQL) 18beta1", major: 18, minor: 0, shown: "18.0"),
        ToolLine(line: "pg_dump (PostgreSQL) 16rc1", major: 16, minor: 0, shown: "16.0"),
        ToolLine(line: "pg_dump (PostgreSQL) 9.6.24", major: 96, minor: 24, shown: "9.6.24"),
        ToolLine(line: "pg_dump (PostgreSQL) 9.5.25", major: 95, minor: 25, shown: "9.5.25"),
        ToolLine(line: "pg_dump (PostgreSQL) 9.6", major: 96, minor: 0, shown: "9.6.0"),
        ToolLine(
            line: "PostgreSQL 15.4 on x86_64-pc-linux-gnu, compiled by gcc (Debian 12.2.0-14) 12.2.0, 64-bit",
            major: 15, minor: 4, shown: "15.4"),
    ])
    func parsesToolVersionLines(_ row: ToolLine) throws {
        let version = try #require(PostgresVersion.parse(toolVersionLine: row.line))
        #expect(version.major == row.major)
        #expect(version.minor == row.minor)
        #expect(version.description == row.shown)
    }

    // A manifest's pg_dump_version is read from the store: "9.9223372036854775807" made `major * 10 + minor`
    // overflow and restore-job trap in its pre-restore checks.
    @Test(arguments: [
        "", "pg_dump (PostgreSQL)", "bash: pg_dump: command not found", "pg_dump (PostgreSQL) devel",
        "9.9223372036854775807", "9.6.9223372036854775807", "15.99999999999999999999", "99999999999999999999.1",
    ])
    func linesWithoutAVersionGiveNil(_ line: String) {
        #expect(PostgresVersion.parse(toolVersionLine: line) == nil)
    }

    @Test(arguments: [
        (150018, 15, 18, "15.18", "15"),
        (160004, 16, 4, "16.4", "16"),
        (170000, 17, 0, "17.0", "17"),
        (100001, 10, 1, "10.1", "10"),
        (90624, 96, 24, "9.6.24", "9.6"),
        (90500, 95, 0, "9.5.0", "9.5"),
        (80422, 84, 22, "8.4.22", "8.4"),
    ])
    func fromServerVersionNumbers(_ row: (Int, Int, Int, String, String)) {
        let version = PostgresVersion(versionNumber: row.0)
        #expect(version.major == row.1)
        #expect(version.minor == row.2)
        #expect(version.description == row.3)
        #expect(version.majorName == row.4)
    }

    @Test(arguments: [
        ("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", 150018),
        ("pg_dump (PostgreSQL) 9.6.24", 90624),
        ("pg_dump (PostgreSQL) 10.1", 100001),
        ("pg_dump (PostgreSQL) 17devel", 170000),
    ])
    func toolLinesAndServerNumbersAgree(_ row: (String, Int)) {
        #expect(PostgresVersion.parse(toolVersionLine: row.0) == PostgresVersion(versionNumber: row.1))
    }

    @Test(arguments: [
        (140010, 150002),  // 14.10 < 15.2
        (150002, 150010),  // 15.2 < 15.10: minors compare as numbers, not text
        (90624, 100000),  // 9.6.24 < 10.0
        (90624, 150018),  // 9.6.24 < 15.18
        (90525, 90600),  // 9.5.25 < 9.6.0
        (80422, 90000),  // 8.4.22 < 9.0.0
        (100000, 100001),  // 10.0 < 10.1
        (160010, 170000),  // 16.10 < 17.0
    ])
    func versionsCompare(_ row: (Int, Int)) {
        let lower = PostgresVersion(versionNumber: row.0)
        let higher = PostgresVersion(versionNumber: row.1)
        #expect(lower < higher)
        #expect(!(higher < lower))
        #expect(higher > lower)
        #expect(lower != higher)
        #expect([higher, lower].max() == higher)
        #expect([higher, lower].sorted() == [lower, higher])
    }

    @Test func sortsAMixOfOldAndNewReleases() throws {
        let lines = ["17.2", "9.6.24", "10.23", "9.5.25", "16.4", "15.18", "16.10"]
        let versions = try lines.map { try #require(PostgresVersion.parse(toolVersionLine: "pg_dump (PostgreSQL) \($0)")) }
        #expect(versions.sorted().map(\.description) == ["9.5.25", "9.6.24", "10.23", "15.18", "16.4", "16.10", "17.2"])
    }
}
