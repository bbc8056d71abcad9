import Foundation

/// Sizes for logs and the API, in the runbook's style: "0 B", "512 B", "1.5 KB", "500 MB", "1.2 GB".
/// Base 1024, at most one decimal, a trailing ".0" dropped.
public enum ByteFormat {
    private static let units = ["B", "KB", "MB", "GB", "TB", "PB", "EB"]

    /// `524288000` → "500 MB", `1536` → "1.5 KB", `512` → "512 B". Negative sizes keep their sign.
    public static func string(_ bytes: Int64) -> String {
        format(Double(bytes))
    }

    /// Throughput: `rate(bytes: 474_000_000, seconds: 10)` → "45.2 MB/s". "n/a" when `seconds` is not
    /// a positive number.
    public static func rate(bytes: Int64, seconds: Double) -> String {
        guard seconds > 0, seconds.isFinite else { return "n/a" }
        return format(Double(bytes) / seconds) + "/s"
    }

    /// `"16MiB"`, `"16M"`, `"16 MB"`, `"512k"`, `"1073741824"` → bytes (units are powers of 1024 whatever
    /// their spelling); nil for anything else.
    public static func parse(_ text: String) -> Int64? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let number = Int64(digits) else { return nil }
        let unit = trimmed.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).lowercased()
        let shifts: [String: Int64] = [
            "": 0, "b": 0, "k": 10, "kb": 10, "kib": 10, "m": 20, "mb": 20, "mib": 20, "g": 30, "gb": 30, "gib": 30,
        ]
        guard let shift = shifts[unit] else { return nil }
        let (value, overflow) = number.multipliedReportingOverflow(by: Int64(1) << shift)
        return overflow ? nil : value
    }

    private static func format(_ value: Double) -> String {
        guard value.isFinite else { return "n/a" }
        let sign = value < 0 ? "-" : ""
        let magnitude = value.magnitude
        if magnitude < 1024 {
            // Whole bytes (a rate can be fractional: round it).
            return "\(sign)\(Int64(magnitude.rounded())) B"
        }
        var unit = 0
        var scaled = magnitude
        while scaled >= 1024, unit < units.count - 1 {
            scaled /= 1024
            unit += 1
        }
        var tenths = (scaled * 10).rounded()
        guard tenths < 1e15 else { return "n/a" }
        // 1023.96 KB rounds to 1024.0: show it as 1 MB.
        if tenths >= 10_240, unit < units.count - 1 {
            unit += 1
            tenths = (scaled / 1024 * 10).rounded()
        }
        return "\(sign)\(oneDecimal(tenths)) \(units[unit])"
    }
}

/// Durations for logs ("850 ms", "12.3 s", "4m 05s", "2h 03m") and ages for the API ("45s", "12m", "2h",
/// "3d").
public enum DurationFormat {
    /// How long something took, rounded to the precision shown: under a second in milliseconds, under a
    /// minute in tenths of a second (".0" dropped), under an hour as minutes and seconds, then as hours and
    /// minutes. Negative durations count as zero.
    public static func string(seconds: Double) -> String {
        // Beyond a few million years there is nothing useful to print (and Int64 would overflow).
        guard seconds.isFinite, seconds < 1e14 else { return "n/a" }
        let seconds = max(seconds, 0)
        let milliseconds = (seconds * 1000).rounded()
        if milliseconds < 1000 { return "\(Int(milliseconds)) ms" }
        let tenths = (seconds * 10).rounded()
        if tenths < 600 { return "\(oneDecimal(tenths)) s" }
        let wholeSeconds = Int64(seconds.rounded())
        if wholeSeconds < 3600 { return "\(wholeSeconds / 60)m \(twoDigits(wholeSeconds % 60))s" }
        let wholeMinutes = Int64((seconds / 60).rounded())
        return "\(wholeMinutes / 60)h \(twoDigits(wholeMinutes % 60))m"
    }

    /// How old something is, in its largest whole unit, rounded down: "45s", "12m", "2h", "3d" (an age of
    /// 59 minutes is "59m", not "1h"). Negative ages (clock skew) count as zero.
    public static func age(seconds: Double) -> String {
        guard seconds.isFinite, seconds < 1e14 else { return "n/a" }
        let whole = Int64(max(seconds, 0).rounded(.down))
        if whole < 60 { return "\(whole)s" }
        if whole < 3_600 { return "\(whole / 60)m" }
        if whole < 86_400 { return "\(whole / 3_600)h" }
        return "\(whole / 86_400)d"
    }

    private static func twoDigits(_ value: Int64) -> String {
        value < 10 ? "0\(value)" : "\(value)"
    }
}

/// A count of tenths as "12.3", or "12" when the tenths digit is zero.
private func oneDecimal(_ tenths: Double) -> String {
    let count = Int64(tenths)
    let whole = count / 10
    let fraction = count % 10
    return fraction == 0 ? "\(whole)" : "\(whole).\(fraction)"
}
