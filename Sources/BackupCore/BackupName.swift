import Foundation

/// How an archive's bytes are compressed; decides the archive's extension.
public enum Compression: String, Sendable, CaseIterable, Codable {
    case gzip
    case zstd

    /// The archive extension without the leading dot: `tar.gz` or `tar.zst`.
    public var fileExtension: String {
        switch self {
        case .gzip: "tar.gz"
        case .zstd: "tar.zst"
        }
    }
}

/// The name of one backup: `<prefix>_YYYY-MM-DD_HH-MM-SS.tar.gz` (UTC), `.tar.zst` with zstd, `+.age` when encrypted.
/// The manifest beside the archive is the archive name plus `.json`.
public struct BackupName: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let prefix: String
    /// The backup's time, whole seconds, UTC.
    public let date: Date
    public let compression: Compression
    public let encrypted: Bool

    public init(prefix: String, date: Date, compression: Compression, encrypted: Bool = false) {
        self.prefix = prefix
        self.date = Date(timeIntervalSince1970: (date.timeIntervalSince1970).rounded(.down))
        self.compression = compression
        self.encrypted = encrypted
    }

    /// The runbook's timestamp, `2025-01-15_14-30-00`, as written in names and in metadata.json.
    public var timestamp: String { Self.formatTimestamp(date) }

    /// `visual_backup_2025-01-15_14-30-00`: the name without extension, also the archive's top directory.
    public var stem: String { "\(prefix)_\(timestamp)" }

    /// `visual_backup_2025-01-15_14-30-00.tar.gz`
    public var fileName: String { "\(stem).\(compression.fileExtension)\(encrypted ? ".age" : "")" }

    /// `visual_backup_2025-01-15_14-30-00.tar.gz.json`: the commit marker, written last.
    public var manifestName: String { "\(fileName).json" }

    public var description: String { fileName }

    public static func < (lhs: BackupName, rhs: BackupName) -> Bool {
        (lhs.date, lhs.fileName) < (rhs.date, rhs.fileName)
    }

    /// Parses an archive file name (not a manifest). Returns nil for anything that is not an archive of
    /// this prefix, so a listing can skip foreign files (another install's prefix, temporary files).
    public static func parse(fileName: String, prefix: String) -> BackupName? {
        guard fileName.hasPrefix(prefix + "_") else { return nil }
        var rest = Substring(fileName.dropFirst(prefix.count + 1))
        guard rest.count > 19 else { return nil }
        let stamp = String(rest.prefix(19))
        rest = rest.dropFirst(19)
        guard let date = parseTimestamp(stamp) else { return nil }
        var encrypted = false
        if rest.hasSuffix(".age") {
            encrypted = true
            rest = rest.dropLast(4)
        }
        for compression in Compression.allCases where rest == "." + compression.fileExtension {
            return BackupName(prefix: prefix, date: date, compression: compression, encrypted: encrypted)
        }
        return nil
    }

    /// Accepts a bare name or a path (`/backups/visual_backup_…tar.gz`) and returns the file name part.
    public static func fileName(fromNameOrPath value: String) -> String {
        value.split(separator: "/", omittingEmptySubsequences: true).last.map(String.init) ?? value
    }

    public static func formatTimestamp(_ date: Date) -> String {
        let c = utcCalendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func two(_ v: Int?) -> String { v.map { $0 < 10 ? "0\($0)" : "\($0)" } ?? "00" }
        let year = c.year.map { String($0) } ?? "0000"
        return "\(year)-\(two(c.month))-\(two(c.day))_\(two(c.hour))-\(two(c.minute))-\(two(c.second))"
    }

    public static func parseTimestamp(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count == 19 else { return nil }
        let separators: [Int: UInt8] = [4: 0x2D, 7: 0x2D, 10: 0x5F, 13: 0x2D, 16: 0x2D]
        for (index, byte) in bytes.enumerated() {
            if let expected = separators[index] {
                guard byte == expected else { return nil }
            } else if !(0x30...0x39).contains(byte) {
                return nil
            }
        }
        func number(_ from: Int, _ length: Int) -> Int {
            bytes[from..<(from + length)].reduce(0) { $0 * 10 + Int($1 - 0x30) }
        }
        var components = DateComponents()
        components.year = number(0, 4)
        components.month = number(5, 2)
        components.day = number(8, 2)
        components.hour = number(11, 2)
        components.minute = number(14, 2)
        components.second = number(17, 2)
        guard let date = utcCalendar.date(from: components),
            formatTimestamp(date) == text  // rejects 2025-02-30 and the like, which Calendar would roll over
        else { return nil }
        return date
    }

    static let utcCalendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()
}
