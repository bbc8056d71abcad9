import Foundation

/// When a looping job runs: a cron expression (UTC) or a fixed interval.
///
/// One value serves the Helm chart (a Kubernetes CronJob's `schedule`) and compose (the job's own loop):
///
/// - five-field cron as Kubernetes writes it: `0 3 * * *`, `*/15 * * * *`, `0 9 * * mon-fri`
///   (see `CronExpression`);
/// - the macros `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`;
/// - an interval: a positive whole number with a unit `s`, `m`, `h` or `d`, units combined largest first
///   (`30m`, `6h`, `1h30m`, `1d12h`), or the same after `@every` (`@every 5m`).
///
/// Anything else is refused with a message that quotes the value and says what is accepted; nothing is
/// guessed (`5` is refused: five what?).
public enum Schedule: Sendable, Equatable, CustomStringConvertible {
    case cron(CronExpression)
    case interval(seconds: Int)

    /// Parses a schedule as written in configuration (surrounding whitespace ignored).
    public static func parse(_ text: String) throws(ContingencyError) -> Schedule {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw ScheduleSyntax.error(text, "the schedule is empty") }

        if trimmed.hasPrefix("TZ=") || trimmed.hasPrefix("CRON_TZ=") {
            throw ScheduleSyntax.error(
                trimmed, "time zone prefixes are not supported; schedules are evaluated in UTC, write the UTC time")
        }

        let tokens = CronExpression.splitFields(trimmed)
        if trimmed.hasPrefix("@") {
            return try parseMacro(tokens, input: trimmed)
        }
        if tokens.count == 1, let first = trimmed.first, first.isASCII, first.isWholeNumber {
            return .interval(seconds: try ScheduleSyntax.parseDuration(trimmed[...], input: trimmed))
        }
        guard tokens.count == 5 else { throw ScheduleSyntax.fieldCountError(trimmed, count: tokens.count) }
        return .cron(try CronExpression(text: trimmed, fields: tokens, input: trimmed))
    }

    /// The seconds in a duration written with units, as intervals are (`90s`, `5m`, `1h30m`, `2d`; zero
    /// allowed, `0s`), or nil when `text` is not one. A bare number (`90`) is not: callers that take plain
    /// seconds check for that first.
    public static func parseInterval(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return try? ScheduleSyntax.parseDuration(trimmed[...], input: trimmed, allowZero: true)
    }

    /// The next time to run strictly after `date`: `date` plus the interval, or the first whole minute after
    /// `date` that the cron expression matches (in UTC).
    public func nextFire(after date: Date) -> Date {
        switch self {
        case .cron(let expression): expression.nextFire(after: date)
        case .interval(let seconds): date.addingTimeInterval(TimeInterval(seconds))
        }
    }

    /// For logs, in a form `parse` accepts: the cron text as written, or `@every 1h30m`.
    public var description: String {
        switch self {
        case .cron(let expression): expression.description
        case .interval(let seconds): "@every \(ScheduleSyntax.durationText(seconds))"
        }
    }

    private static func parseMacro(_ tokens: [Substring], input: String) throws(ContingencyError) -> Schedule {
        let name = tokens[0].lowercased()
        if name == "@every" {
            guard tokens.count == 2 else {
                throw ScheduleSyntax.error(
                    input, "@every takes exactly one duration, like `@every 5m` or `@every 1h30m`")
            }
            return .interval(seconds: try ScheduleSyntax.parseDuration(tokens[1], input: input))
        }
        if name == "@reboot" {
            throw ScheduleSyntax.error(
                input,
                "@reboot is not meaningful for a job that loops; use a cron expression like `0 3 * * *` "
                    + "or an interval like `24h`"
            )
        }
        guard let expansion = ScheduleSyntax.macros[name] else {
            throw ScheduleSyntax.error(
                input,
                "unknown macro \(tokens[0]); accepted: \(ScheduleSyntax.macroNames.joined(separator: ", ")) "
                    + "and @every <duration>"
            )
        }
        guard tokens.count == 1 else {
            throw ScheduleSyntax.error(input, "\(tokens[0]) takes nothing after it")
        }
        return .cron(try CronExpression(text: input, fields: CronExpression.splitFields(expansion), input: input))
    }
}

/// Shared by `Schedule` and `CronExpression`: names, macros, durations and error messages.
enum ScheduleSyntax {
    static let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    static let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

    static let macroNames = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]
    static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *",
        "@annually": "0 0 1 1 *",
        "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *",
        "@midnight": "0 0 * * *",
        "@hourly": "0 * * * *",
    ]

    static let accepted =
        "Accepted: 5-field cron (minute hour day-of-month month day-of-week, in UTC) like `0 3 * * *`, "
        + "a macro like @daily, or an interval like 30m, 6h, 1h30m or @every 5m"

    /// A configuration error that quotes the value as written.
    static func error(_ input: String, _ problem: String) -> ContingencyError {
        .configuration("invalid schedule \"\(input)\": \(problem)", hint: accepted)
    }

    static func fieldCountError(_ input: String, count: Int) -> ContingencyError {
        switch count {
        case 6:
            error(input, "6 fields: seconds or years are not supported; use 5 fields like `0 0 * * *`")
        case 7:
            error(input, "7 fields: seconds and years are not supported; use 5 fields like `0 0 * * *`")
        default:
            error(
                input,
                "\(count) field\(count == 1 ? "" : "s"); a cron expression has 5 "
                    + "(minute hour day-of-month month day-of-week)"
            )
        }
    }

    private static let unitSeconds: [(unit: Character, seconds: Int)] = [
        ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1),
    ]

    /// `30m`, `6h`, `1h30m`, `1d12h`: whole numbers, each followed by a unit, units largest first and at most
    /// once each. Returns seconds, at least 1 unless `allowZero`.
    static func parseDuration(
        _ text: Substring, input: String, allowZero: Bool = false
    ) throws(ContingencyError) -> Int {
        guard !text.isEmpty else { throw error(input, "the interval is empty") }
        var total = 0
        var nextUnitIndex = 0
        var index = text.startIndex
        while index < text.endIndex {
            let digitsEnd = text[index...].firstIndex(where: { !($0.isASCII && $0.isWholeNumber) }) ?? text.endIndex
            let digits = text[index..<digitsEnd]
            guard !digits.isEmpty else {
                throw error(input, "`\(text)` is not a duration: expected a number at `\(text[index...])`")
            }
            guard digitsEnd < text.endIndex else {
                if index == text.startIndex {
                    throw error(input, "\(digits) what? write \(digits)m, \(digits)h or \(digits)d (units: s, m, h, d)")
                }
                throw error(input, "\(digits) has no unit; write \(text)m, \(text)s… (units: s, m, h, d)")
            }
            let unit = text[digitsEnd]
            guard let unitIndex = unitSeconds.firstIndex(where: { $0.unit == unit }) else {
                throw error(input, "unknown unit `\(unit)` in `\(text)`; units are s, m, h and d (lowercase)")
            }
            guard unitIndex >= nextUnitIndex else {
                throw error(input, "in `\(text)`, write each unit once, largest first (like 1d12h or 1h30m)")
            }
            nextUnitIndex = unitIndex + 1
            guard digits.count <= 9, let number = Int(digits) else {
                throw error(input, "`\(text)` is too long an interval")
            }
            total += number * unitSeconds[unitIndex].seconds
            index = text.index(after: digitsEnd)
        }
        guard total > 0 || allowZero else { throw error(input, "the interval is zero; it must be at least 1s") }
        return total
    }

    /// The canonical text of a positive duration: 5400 → `1h30m`, 86400 → `1d`.
    static func durationText(_ seconds: Int) -> String {
        guard seconds > 0 else { return "\(seconds)s" }
        var rest = seconds
        var text = ""
        for (unit, size) in unitSeconds where rest >= size {
            text += "\(rest / size)\(unit)"
            rest %= size
        }
        return text
    }
}
