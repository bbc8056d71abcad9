import Foundation

/// A standard five-field cron expression (minute hour day-of-month month day-of-week), evaluated in UTC.
///
/// The syntax is the one a Kubernetes CronJob accepts, so one value can serve the Helm chart and compose:
/// `*`, numbers, ranges `a-b`, steps `*/n`, `a-b/n` and `a/n` (from `a` to the field's maximum), lists
/// `a,b,c`, month names `jan`…`dec` and day names `sun`…`sat` (any case), and day-of-week 0-7 where both
/// 0 and 7 are Sunday.
///
/// Day matching follows Vixie cron: when both day-of-month and day-of-week are restricted (neither is `*`),
/// a day matches if either field matches; otherwise both must.
///
/// Build one with `CronExpression(_:)` (five fields) or through `Schedule.parse(_:)`, which also accepts
/// macros such as `@daily`. Every expression that parses fires at least once; one that never could
/// (`0 0 30 2 *`) is refused.
public struct CronExpression: Sendable, Equatable, CustomStringConvertible {
    /// The text as written (trimmed), for logs.
    public let text: String

    private let minuteBits: FieldBits
    private let hourBits: FieldBits
    private let dayOfMonthBits: FieldBits
    private let monthBits: FieldBits
    private let dayOfWeekBits: FieldBits
    /// True when the day-of-month field is `*` (possibly `*/1`): it then does not take part in the
    /// "either day field matches" rule.
    public let dayOfMonthIsWildcard: Bool
    /// True when the day-of-week field is `*` (possibly `*/1`).
    public let dayOfWeekIsWildcard: Bool

    /// Allowed minutes, 0-59.
    public var minutes: Set<Int> { minuteBits.values }
    /// Allowed hours, 0-23.
    public var hours: Set<Int> { hourBits.values }
    /// Allowed days of the month, 1-31.
    public var daysOfMonth: Set<Int> { dayOfMonthBits.values }
    /// Allowed months, 1-12.
    public var months: Set<Int> { monthBits.values }
    /// Allowed days of the week, 0-6 with 0 = Sunday (a 7 in the expression is stored as 0).
    public var daysOfWeek: Set<Int> { dayOfWeekBits.values }

    /// The original text, for logs.
    public var description: String { text }

    /// Parses a five-field cron expression. Macros (`@daily`) and intervals are handled by `Schedule.parse(_:)`.
    public init(_ text: String) throws(ContingencyError) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let fields = Self.splitFields(trimmed)
        guard fields.count == 5 else { throw ScheduleSyntax.fieldCountError(trimmed, count: fields.count) }
        try self.init(text: trimmed, fields: fields, input: trimmed)
    }

    /// `text` is what `description` returns; `fields` are the five fields to parse; `input` is what error
    /// messages quote (the operator's value, which for a macro differs from the fields).
    init(text: String, fields: [Substring], input: String) throws(ContingencyError) {
        precondition(fields.count == 5)
        let minute = try Self.parseField(fields[0], .minute, input: input)
        let hour = try Self.parseField(fields[1], .hour, input: input)
        let dayOfMonth = try Self.parseField(fields[2], .dayOfMonth, input: input)
        let month = try Self.parseField(fields[3], .month, input: input)
        let dayOfWeek = try Self.parseField(fields[4], .dayOfWeek, input: input)
        self.text = text
        minuteBits = minute.bits
        hourBits = hour.bits
        dayOfMonthBits = dayOfMonth.bits
        monthBits = month.bits
        dayOfWeekBits = dayOfWeek.bits
        dayOfMonthIsWildcard = dayOfMonth.isWildcard
        dayOfWeekIsWildcard = dayOfWeek.isWildcard
        try checkCanFire(input: input)
    }

    /// Two expressions are equal when they fire at the same times (`@daily` equals `0 0 * * *`), whatever
    /// their text.
    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.minuteBits == rhs.minuteBits && lhs.hourBits == rhs.hourBits && lhs.dayOfMonthBits == rhs.dayOfMonthBits
            && lhs.monthBits == rhs.monthBits && lhs.dayOfWeekBits == rhs.dayOfWeekBits
            && lhs.dayOfMonthIsWildcard == rhs.dayOfMonthIsWildcard
            && lhs.dayOfWeekIsWildcard == rhs.dayOfWeekIsWildcard
    }

    // MARK: - Next fire time

    /// The first whole minute strictly after `date` that matches, in UTC.
    ///
    /// Skips whole months, days and hours that cannot match, so the cost is a few hundred steps at worst
    /// (`0 0 29 2 *` across the eight-year gap around 2100), never a minute-by-minute walk.
    public func nextFire(after date: Date) -> Date {
        let seconds = date.timeIntervalSince1970
        guard seconds.isFinite, abs(seconds) < 1e15 else { return date }
        // The first whole minute strictly after `date`.
        let startMinute = Int64((seconds / 60).rounded(.down)) + 1
        var day = floorDiv(startMinute, 1440)
        let minuteOfDay = Int(startMinute - day * 1440)
        var hour = minuteOfDay / 60
        var minute = minuteOfDay % 60

        // Every parsed expression fires at least once every eight years and a bit; the bound only guards
        // against an infinite loop should that ever stop being true.
        for _ in 0..<200_000 {
            let (year, month, dayOfMonth) = civilFromDays(day)
            guard monthBits.contains(month) else {
                day = daysFromCivil(year: month == 12 ? year + 1 : year, month: month == 12 ? 1 : month + 1, day: 1)
                hour = 0
                minute = 0
                continue
            }
            guard dayMatches(dayOfMonth: dayOfMonth, weekday: weekday(day)) else {
                day += 1
                hour = 0
                minute = 0
                continue
            }
            guard let nextHour = hourBits.first(atOrAfter: hour) else {
                day += 1
                hour = 0
                minute = 0
                continue
            }
            if nextHour != hour {
                hour = nextHour
                minute = 0
            }
            guard let nextMinute = minuteBits.first(atOrAfter: minute) else {
                hour += 1
                minute = 0
                if hour == 24 {
                    day += 1
                    hour = 0
                }
                continue
            }
            let total = day * 86_400 + Int64(hour) * 3_600 + Int64(nextMinute) * 60
            return Date(timeIntervalSince1970: TimeInterval(total))
        }
        return .distantFuture
    }

    private func dayMatches(dayOfMonth: Int, weekday: Int) -> Bool {
        let domMatch = dayOfMonthBits.contains(dayOfMonth)
        let dowMatch = dayOfWeekBits.contains(weekday)
        if dayOfMonthIsWildcard || dayOfWeekIsWildcard { return domMatch && dowMatch }
        return domMatch || dowMatch
    }

    /// Refuses an expression that can never fire. Hours and minutes are never empty, and every month has
    /// every weekday, so only "this day of the month, in these months, whatever the weekday" can be
    /// impossible: `0 0 30 2 *`, `0 0 31 4,6 *`. February counts 29 days (leap years come at least every
    /// eight years, so `0 0 29 2 *` is accepted).
    private func checkCanFire(input: String) throws(ContingencyError) {
        guard !dayOfMonthIsWildcard, dayOfWeekIsWildcard else { return }
        let longest = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        for month in 1...12 where monthBits.contains(month) {
            if let first = dayOfMonthBits.first(atOrAfter: 1), first <= longest[month] { return }
        }
        let monthNames = (1...12).filter { monthBits.contains($0) }.map { ScheduleSyntax.monthNames[$0 - 1] }
        let days = (1...31).filter { dayOfMonthBits.contains($0) }.map(String.init)
        throw ScheduleSyntax.error(
            input,
            "it can never fire: day-of-month \(days.joined(separator: ",")) never occurs in "
                + monthNames.joined(separator: ",")
        )
    }

    // MARK: - Parsing

    static func splitFields(_ text: String) -> [Substring] {
        text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0.isNewline })
    }

    struct Field {
        let name: String
        let range: ClosedRange<Int>
        /// The range `*` and `a/n` span (day-of-week: 0-6, so `*/2` does not list Sunday twice).
        let wildcardRange: ClosedRange<Int>
        let names: [String]
        /// The value `names[0]` stands for.
        let firstNameValue: Int

        static let minute = Field(name: "minute", range: 0...59, wildcardRange: 0...59, names: [], firstNameValue: 0)
        static let hour = Field(name: "hour", range: 0...23, wildcardRange: 0...23, names: [], firstNameValue: 0)
        static let dayOfMonth = Field(
            name: "day-of-month", range: 1...31, wildcardRange: 1...31, names: [], firstNameValue: 0)
        static let month = Field(
            name: "month", range: 1...12, wildcardRange: 1...12, names: ScheduleSyntax.monthNames, firstNameValue: 1)
        static let dayOfWeek = Field(
            name: "day-of-week", range: 0...7, wildcardRange: 0...6, names: ScheduleSyntax.dayNames, firstNameValue: 0)

        var rangeText: String {
            var text = "\(range.lowerBound)-\(range.upperBound)"
            if let first = names.first, let last = names.last { text += " or \(first)-\(last)" }
            if name == "day-of-week" { text += ", 0 and 7 both Sunday" }
            return text
        }
    }

    private static func parseField(
        _ text: Substring, _ field: Field, input: String
    ) throws(ContingencyError) -> (bits: FieldBits, isWildcard: Bool) {
        var bits = FieldBits()
        var isWildcard = false
        let items = text.split(separator: ",", omittingEmptySubsequences: false)
        for item in items {
            guard !item.isEmpty else {
                throw ScheduleSyntax.error(input, "\(field.name) field `\(text)` has an empty list item")
            }
            let parts = item.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2 else {
                throw ScheduleSyntax.error(input, "\(field.name) field item `\(item)` has more than one `/`")
            }
            var step = 1
            if parts.count == 2 {
                let stepText = parts[1]
                guard let value = decimal(stepText) else {
                    throw ScheduleSyntax.error(
                        input, "\(field.name) step `\(stepText)` in `\(item)` is not a whole number")
                }
                guard value > 0 else {
                    throw ScheduleSyntax.error(input, "\(field.name) step 0 in `\(item)`: a step must be 1 or more")
                }
                step = value
            }
            let rangeText = parts[0]
            let low: Int
            let high: Int
            if rangeText == "*" {
                low = field.wildcardRange.lowerBound
                high = field.wildcardRange.upperBound
                if step == 1 { isWildcard = true }
            } else {
                let ends = rangeText.split(separator: "-", omittingEmptySubsequences: false)
                switch ends.count {
                case 1:
                    low = try value(ends[0], field, item: item, input: input)
                    // `a/n` runs from a to the field's maximum, as Kubernetes reads it.
                    high = parts.count == 2 ? max(low, field.wildcardRange.upperBound) : low
                case 2:
                    low = try value(ends[0], field, item: item, input: input)
                    high = try value(ends[1], field, item: item, input: input)
                    guard low <= high else {
                        throw ScheduleSyntax.error(
                            input,
                            "\(field.name) range `\(rangeText)` is reversed; write the smaller value first "
                                + "(ranges do not wrap around)"
                        )
                    }
                default:
                    throw ScheduleSyntax.error(input, "\(field.name) field item `\(item)` is not a value or a range")
                }
            }
            for value in stride(from: low, through: high, by: step) {
                bits.insert(field.name == "day-of-week" && value == 7 ? 0 : value)
            }
        }
        return (bits, isWildcard)
    }

    private static func value(
        _ text: Substring, _ field: Field, item: Substring, input: String
    ) throws(ContingencyError) -> Int {
        if let number = decimal(text) {
            guard field.range.contains(number) else {
                throw ScheduleSyntax.error(
                    input, "\(field.name) \(text) is out of range: \(field.name) takes \(field.rangeText)")
            }
            return number
        }
        if let index = field.names.firstIndex(of: text.lowercased()) { return field.firstNameValue + index }
        if text.isEmpty {
            throw ScheduleSyntax.error(input, "\(field.name) field item `\(item)` is missing a value")
        }
        throw ScheduleSyntax.error(
            input, "`\(text)` is not a valid \(field.name) value: \(field.name) takes \(field.rangeText)")
    }

    /// A non-negative decimal made of ASCII digits only, or nil (also when too long to be meaningful).
    private static func decimal(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 9, text.allSatisfy({ $0.isASCII && $0.isWholeNumber }) else {
            return nil
        }
        return Int(text)
    }
}

/// A set of small non-negative integers (0-63) as a bit mask.
struct FieldBits: Sendable, Equatable {
    private var mask: UInt64 = 0

    mutating func insert(_ value: Int) { mask |= 1 << UInt64(value) }
    func contains(_ value: Int) -> Bool { value >= 0 && value < 64 && mask & (1 << UInt64(value)) != 0 }

    /// The smallest member not below `value`, if any.
    func first(atOrAfter value: Int) -> Int? {
        guard value < 64 else { return nil }
        let rest = mask >> UInt64(max(value, 0))
        return rest == 0 ? nil : max(value, 0) + rest.trailingZeroBitCount
    }

    var values: Set<Int> { Set((0..<64).filter(contains)) }
}

// MARK: - UTC calendar arithmetic (proleptic Gregorian, days since 1970-01-01)

private func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

/// Howard Hinnant's `civil_from_days`.
private func civilFromDays(_ days: Int64) -> (year: Int64, month: Int, day: Int) {
    let z = days + 719_468
    let era = floorDiv(z, 146_097)
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = Int(doy - (153 * mp + 2) / 5 + 1)
    let month = Int(mp < 10 ? mp + 3 : mp - 9)
    let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
    return (year, month, day)
}

/// Howard Hinnant's `days_from_civil`.
private func daysFromCivil(year: Int64, month: Int, day: Int) -> Int64 {
    let y = month <= 2 ? year - 1 : year
    let era = floorDiv(y, 400)
    let yoe = y - era * 400
    let m = Int64(month)
    let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146_097 + doe - 719_468
}

/// 0 = Sunday. 1970-01-01 was a Thursday.
private func weekday(_ days: Int64) -> Int {
    Int(((days % 7) + 7 + 4) % 7)
}
