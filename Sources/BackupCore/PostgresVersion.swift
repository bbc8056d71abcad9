/// A PostgreSQL version as the tools and the server report it.
public struct PostgresVersion: Sendable, Equatable, Comparable, CustomStringConvertible, Codable {
    public var major: Int
    public var minor: Int

    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    /// From `server_version_num` / `PQserverVersion`: 150018 → 15.18, 90624 → 9.6.24 (shown as 9.6).
    public init(versionNumber: Int) {
        if versionNumber >= 100_000 {
            self.init(major: versionNumber / 10_000, minor: versionNumber % 10_000)
        } else {
            self.init(major: versionNumber / 10_000 * 10 + versionNumber / 100 % 100, minor: versionNumber % 100)
        }
    }

    /// From a tool's `--version` line: `pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` → 15.18.
    public static func parse(toolVersionLine line: String) -> PostgresVersion? {
        // A version's parts have a few digits: a longer run is not one (a manifest's version, read from the store,
        // could otherwise overflow `major * 10 + minor` below).
        func digits(_ part: Substring?) -> Substring? {
            let run = part?.prefix { $0.isASCII && $0.isNumber } ?? ""
            return run.count <= 9 ? run : nil
        }
        for word in line.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            let parts = word.split(separator: ".")
            // `17devel`, `18beta1`, `16rc1`: pre-releases have no minor.
            guard let first = digits(parts.first), let major = Int(first),
                let minorDigits = digits(parts.count > 1 ? parts[1] : nil),
                let patchDigits = digits(parts.count > 2 ? parts[2] : nil)
            else { continue }
            // Releases 10+ are MAJOR.MINOR; 9.x are 9.6.24 with 9.6 the major (kept as 96 so majors compare).
            if major >= 10 { return PostgresVersion(major: major, minor: Int(minorDigits) ?? 0) }
            return PostgresVersion(major: major * 10 + (Int(minorDigits) ?? 0), minor: Int(patchDigits) ?? 0)
        }
        return nil
    }

    /// `15.18`; the 9.x series shows as `9.6.24`.
    public var description: String {
        isOldSeries ? "\(major / 10).\(major % 10).\(minor)" : "\(major).\(minor)"
    }

    /// `15`, or `9.6` for the old series: the number a Debian package name uses (postgresql-client-15).
    public var majorName: String { isOldSeries ? "\(major / 10).\(major % 10)" : "\(major)" }

    /// 6.x to 9.x, stored as 60 to 99 (9.6 → 96); releases 10 and later keep their own number.
    private var isOldSeries: Bool { (60...99).contains(major) }

    /// 9.6 → 9, 15 → 15: orders the old series before release 10.
    private var series: Int { isOldSeries ? major / 10 : major }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.series, lhs.major, lhs.minor) < (rhs.series, rhs.major, rhs.minor)
    }
}
