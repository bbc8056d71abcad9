import Foundation
import Testing

@testable import BackupCore

/// A UTC instant written `2025-01-15T14:30:00Z` (fractional seconds allowed).
private func utc(_ text: String) -> Date {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions =
        text.contains(".") ? [.withInternetDateTime, .withFractionalSeconds] : [.withInternetDateTime]
    guard let date = formatter.date(from: text) else { fatalError("bad test date \(text)") }
    return date
}

private func iso(_ date: Date) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    return formatter.string(from: date)
}

struct NextFireCase: CustomTestStringConvertible, Sendable {
    let schedule: String
    let after: String
    let expected: String
    let note: String

    init(_ schedule: String, after: String, _ expected: String, _ note: String = "") {
        self.schedule = schedule
        self.after = after
        self.expected = expected
        self.note = note
    }

    var testDescription: String { "\(schedule) after \(after)\(note.isEmpty ? "" : " (\(note))")" }
}

// Calendar facts used below, checked by hand: 2025-01-15 is a Wednesday, 2025-01-17 a Friday,
// 2025-01-19 a Sunday, 2025-02-01 a Saturday, 2025-06-01 a Sunday; 2100 is not a leap year.
private let cronCases: [NextFireCase] = [
    .init("0 0 * * *", after: "2025-01-15T14:30:00Z", "2025-01-16T00:00:00Z", "daily at midnight"),
    .init("30 14 * * *", after: "2025-01-15T14:30:00Z", "2025-01-16T14:30:00Z", "strictly after: not the same minute"),
    .init("30 14 * * *", after: "2025-01-15T14:29:59.500Z", "2025-01-15T14:30:00Z", "half a second before"),
    .init("*/15 * * * *", after: "2025-01-15T14:30:00Z", "2025-01-15T14:45:00Z"),
    .init("*/15 * * * *", after: "2025-01-15T14:31:10Z", "2025-01-15T14:45:00Z"),
    .init("*/15 * * * *", after: "2025-01-15T23:59:30Z", "2025-01-16T00:00:00Z", "day rollover"),
    .init("5/20 * * * *", after: "2025-01-15T14:30:00Z", "2025-01-15T14:45:00Z", "a/n runs from a to the end"),
    .init("0 8-18/4 * * *", after: "2025-01-15T12:00:00Z", "2025-01-15T16:00:00Z", "hours 8,12,16"),
    .init("0 8-18/4 * * *", after: "2025-01-15T16:30:00Z", "2025-01-16T08:00:00Z"),
    .init("0 9 * * mon-fri", after: "2025-01-17T10:00:00Z", "2025-01-20T09:00:00Z", "Friday evening to Monday"),
    .init("0 9 * * mon-fri", after: "2025-01-18T08:00:00Z", "2025-01-20T09:00:00Z", "from Saturday"),
    .init("0 9 * * 1-5", after: "2025-01-17T08:59:59Z", "2025-01-17T09:00:00Z", "same Friday"),
    .init("0 0 * * MON", after: "2025-01-15T00:00:00Z", "2025-01-20T00:00:00Z", "names in any case"),
    .init("0 12 * * 7", after: "2025-01-15T00:00:00Z", "2025-01-19T12:00:00Z", "7 is Sunday"),
    .init("0 12 * * 0", after: "2025-01-15T00:00:00Z", "2025-01-19T12:00:00Z", "0 is Sunday"),
    .init("0 12 * * Sun", after: "2025-01-15T00:00:00Z", "2025-01-19T12:00:00Z"),
    .init("0 0 * * 6-7", after: "2025-01-15T00:00:00Z", "2025-01-18T00:00:00Z", "Saturday and Sunday"),
    .init("0 0 * * 6-7", after: "2025-01-18T00:00:00Z", "2025-01-19T00:00:00Z"),
    // Both day fields restricted: either matches (Vixie cron).
    .init("0 0 1,15 * 5", after: "2025-01-15T00:00:00Z", "2025-01-17T00:00:00Z", "OR: a Friday"),
    .init("0 0 1,15 * 5", after: "2025-01-31T00:00:00Z", "2025-02-01T00:00:00Z", "OR: the 1st, a Saturday"),
    .init("0 0 2 * 5", after: "2025-06-01T00:00:00Z", "2025-06-02T00:00:00Z", "OR: the 2nd, a Monday"),
    .init("0 0 30 2 fri", after: "2025-01-15T00:00:00Z", "2025-02-07T00:00:00Z", "Feb 30 never, Fridays in Feb do"),
    // Only one day field restricted: both must match.
    .init("0 0 1,15 * *", after: "2025-01-15T00:00:00Z", "2025-02-01T00:00:00Z"),
    .init("0 0 */1 * 5", after: "2025-01-14T00:00:00Z", "2025-01-17T00:00:00Z", "*/1 counts as *"),
    // `*/2` is not `*` (as Kubernetes' parser reads it): odd days OR Fridays.
    .init("0 0 */2 * 5", after: "2025-01-14T00:00:00Z", "2025-01-15T00:00:00Z", "*/2 is a restriction"),
    .init("0 0 29 2 *", after: "2025-01-01T00:00:00Z", "2028-02-29T00:00:00Z", "next leap day"),
    .init("0 0 29 2 *", after: "2024-02-28T12:00:00Z", "2024-02-29T00:00:00Z"),
    .init("0 0 29 2 *", after: "2097-03-01T00:00:00Z", "2104-02-29T00:00:00Z", "2100 is not a leap year"),
    .init("0 0 * * *", after: "2024-02-28T12:00:00Z", "2024-02-29T00:00:00Z", "leap day exists"),
    .init("0 0 * * *", after: "2025-02-28T12:00:00Z", "2025-03-01T00:00:00Z", "no leap day"),
    .init("0 0 31 * *", after: "2025-04-15T00:00:00Z", "2025-05-31T00:00:00Z", "skips 30-day April"),
    .init("30 23 31 * *", after: "2025-01-31T23:30:00Z", "2025-03-31T23:30:00Z", "skips February"),
    .init("0 0 1 jan,jul *", after: "2025-02-01T00:00:00Z", "2025-07-01T00:00:00Z", "month names"),
    .init("0 0 1 JAN-mar/2 *", after: "2025-01-01T00:00:00Z", "2025-03-01T00:00:00Z", "named range with step"),
    .init("0 0 1 1 *", after: "2025-06-01T00:00:00Z", "2026-01-01T00:00:00Z", "year rollover"),
    .init("59 23 31 12 *", after: "2025-12-31T23:59:00Z", "2026-12-31T23:59:00Z"),
    .init("*/5 * * * *", after: "2025-12-31T23:58:00Z", "2026-01-01T00:00:00Z", "new year's minute"),
    .init("0 0 1 1 *", after: "1969-06-01T00:00:00Z", "1970-01-01T00:00:00Z", "before the epoch"),
    .init("  0\t0  * *   *  ", after: "2025-01-15T14:30:00Z", "2025-01-16T00:00:00Z", "tabs and runs of spaces"),
    .init("@yearly", after: "2025-06-01T00:00:00Z", "2026-01-01T00:00:00Z"),
    .init("@annually", after: "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
    .init("@monthly", after: "2025-01-31T12:00:00Z", "2025-02-01T00:00:00Z"),
    .init("@weekly", after: "2025-01-15T14:30:00Z", "2025-01-19T00:00:00Z", "next Sunday"),
    .init("@weekly", after: "2025-01-19T00:00:00Z", "2025-01-26T00:00:00Z", "from Sunday midnight itself"),
    .init("@daily", after: "2025-01-15T14:30:00Z", "2025-01-16T00:00:00Z"),
    .init("@midnight", after: "2025-12-31T23:59:59Z", "2026-01-01T00:00:00Z"),
    .init("@hourly", after: "2025-01-15T14:30:00Z", "2025-01-15T15:00:00Z"),
    .init("@HOURLY", after: "2025-01-15T23:00:00Z", "2025-01-16T00:00:00Z"),
]

@Test(arguments: cronCases)
func cronNextFire(_ testCase: NextFireCase) throws {
    let schedule = try Schedule.parse(testCase.schedule)
    guard case .cron = schedule else {
        Issue.record("\(testCase.schedule) should parse as cron, got \(schedule)")
        return
    }
    #expect(iso(schedule.nextFire(after: utc(testCase.after))) == testCase.expected)
}

struct IntervalCase: CustomTestStringConvertible, Sendable {
    let text: String
    let seconds: Int
    let description: String
    var testDescription: String { text }
}

private let intervalCases: [IntervalCase] = [
    .init(text: "24h", seconds: 86_400, description: "@every 1d"),
    .init(text: "1h30m", seconds: 5_400, description: "@every 1h30m"),
    .init(text: "90m", seconds: 5_400, description: "@every 1h30m"),
    .init(text: "@every 5m", seconds: 300, description: "@every 5m"),
    .init(text: "@every 1h30m", seconds: 5_400, description: "@every 1h30m"),
    .init(text: "@EVERY\t90s", seconds: 90, description: "@every 1m30s"),
    .init(text: "30s", seconds: 30, description: "@every 30s"),
    .init(text: "2d", seconds: 172_800, description: "@every 2d"),
    .init(text: "1d12h", seconds: 129_600, description: "@every 1d12h"),
    .init(text: "1d2h3m4s", seconds: 93_784, description: "@every 1d2h3m4s"),
    .init(text: "1h0m", seconds: 3_600, description: "@every 1h"),
    .init(text: "  6h \n", seconds: 21_600, description: "@every 6h"),
]

@Test(arguments: intervalCases)
func intervalSchedules(_ testCase: IntervalCase) throws {
    let schedule = try Schedule.parse(testCase.text)
    #expect(schedule == .interval(seconds: testCase.seconds))
    let start = utc("2025-01-15T14:30:07Z")
    #expect(schedule.nextFire(after: start).timeIntervalSince(start) == TimeInterval(testCase.seconds))
    #expect(schedule.description == testCase.description)
    // What is logged can be pasted back into the configuration.
    #expect(try Schedule.parse(schedule.description) == schedule)
}

struct RefusalCase: CustomTestStringConvertible, Sendable {
    let text: String
    /// A fragment the message must contain, beyond quoting the input.
    let says: String
    var testDescription: String { "\"\(text)\" → \(says)" }
    init(_ text: String, _ says: String) {
        self.text = text
        self.says = says
    }
}

private let refusals: [RefusalCase] = [
    .init("", "empty"),
    .init("   \t ", "empty"),
    .init("0 0 0 * * *", "6 fields: seconds or years are not supported; use 5 fields like `0 0 * * *`"),
    .init("0 0 * * * 2025", "6 fields: seconds or years are not supported"),
    .init("0 0 0 * * * 2025", "7 fields"),
    .init("0 0 * * * * * *", "8 fields"),
    .init("0 0 * *", "4 fields"),
    .init("* *", "2 fields"),
    .init("*", "1 field"),
    .init("60 * * * *", "minute 60 is out of range: minute takes 0-59"),
    .init("0 24 * * *", "hour 24 is out of range: hour takes 0-23"),
    .init("0 0 0 * *", "day-of-month 0 is out of range: day-of-month takes 1-31"),
    .init("0 0 32 * *", "day-of-month 32 is out of range"),
    .init("0 0 * 0 *", "month 0 is out of range: month takes 1-12"),
    .init("0 0 * 13 *", "month 13 is out of range"),
    .init("0 0 * * 8", "day-of-week 8 is out of range: day-of-week takes 0-7"),
    .init("0 0-30 * * *", "hour 30 is out of range"),
    .init("99999999999 * * * *", "minute"),
    .init("5-1 * * * *", "range `5-1` is reversed"),
    .init("0 0 * * fri-mon", "range `fri-mon` is reversed"),
    .init("0 0 * dec-jan *", "reversed"),
    .init("*/0 * * * *", "step 0"),
    .init("0 0-23/0 * * *", "step 0"),
    .init("*/x * * * *", "step `x`"),
    .init("1/2/3 * * * *", "more than one `/`"),
    .init("0 0 * * 1-2-3", "not a value or a range"),
    .init("-1 * * * *", "missing a value"),
    .init("0 0 * * mon,,fri", "empty list item"),
    .init("0 0 * * mon,", "empty list item"),
    .init("0 0 * foo *", "`foo` is not a valid month value"),
    .init("0 0 * * monday", "`monday` is not a valid day-of-week value"),
    .init("0 mon * * *", "`mon` is not a valid hour value"),
    .init("5", "5 what? write 5m, 5h"),
    .init("@every 5", "5 what? write 5m, 5h"),
    .init("1h30", "30 has no unit"),
    .init("5x", "unknown unit `x`"),
    .init("5M", "unknown unit `M`"),
    .init("1.5h", "unknown unit `.`"),
    .init("30m1h", "largest first"),
    .init("1h1h", "largest first"),
    .init("0s", "zero"),
    .init("0h0m", "zero"),
    .init("@every 0s", "zero"),
    .init("@every", "exactly one duration"),
    .init("@every 5m 10s", "exactly one duration"),
    .init("@every daily", "not a duration"),
    .init("@reboot", "@reboot is not meaningful"),
    .init("@fortnightly", "unknown macro @fortnightly"),
    .init("@", "unknown macro"),
    .init("@daily 0", "takes nothing after it"),
    .init("0 0 30 2 *", "never fire"),
    .init("0 0 31 4 *", "never fire"),
    .init("0 0 30,31 feb *", "never fire"),
    .init("0 0 31 2,4,6,9,11 *", "never fire"),
    .init("TZ=Europe/Paris 0 3 * * *", "UTC"),
    .init("CRON_TZ=UTC 0 3 * * *", "UTC"),
]

@Test(arguments: refusals)
func refusedSchedules(_ testCase: RefusalCase) throws {
    let error = try #require(throws: ContingencyError.self) { try Schedule.parse(testCase.text) }
    #expect(error.isConfiguration)
    let quoted = "\"\(testCase.text.trimmingCharacters(in: .whitespacesAndNewlines))\""
    let quotedRaw = "\"\(testCase.text)\""
    #expect(error.message.contains(quoted) || error.message.contains(quotedRaw), "message: \(error.message)")
    #expect(error.message.contains(testCase.says), "message: \(error.message)")
    // Every refusal says what is accepted.
    let hint = try #require(error.hint)
    #expect(hint.contains("0 3 * * *") && hint.contains("1h30m") && hint.contains("@daily"))
}

@Test func neverFiringMessageNamesTheDayAndMonths() throws {
    let error = try #require(throws: ContingencyError.self) { try Schedule.parse("0 0 31 4,jun *") }
    #expect(error.message.contains("31"))
    #expect(error.message.contains("apr,jun"))
}

@Test(arguments: [
    "0 0 29 2 *", "0 0 31 1-12 *", "0 0 30 2 5", "0 0 31 4,5 *", "0 0 31 * *", "59 23 31 dec *",
])
func rareButPossibleExpressionsAreAccepted(_ text: String) throws {
    let schedule = try Schedule.parse(text)
    let start = utc("2025-01-01T00:00:00Z")
    let next = schedule.nextFire(after: start)
    #expect(next > start)
    #expect(next.timeIntervalSince(start) < 9 * 366 * 86_400)
}

@Test func cronFieldsAreStoredAsSetsAndTextKept() throws {
    let expression = try CronExpression(" 0,30 8-18/4 1,15 jan-mar 5-7 ")
    #expect(expression.minutes == [0, 30])
    #expect(expression.hours == [8, 12, 16])
    #expect(expression.daysOfMonth == [1, 15])
    #expect(expression.months == [1, 2, 3])
    #expect(expression.daysOfWeek == [5, 6, 0])
    #expect(!expression.dayOfMonthIsWildcard)
    #expect(!expression.dayOfWeekIsWildcard)
    #expect(expression.description == "0,30 8-18/4 1,15 jan-mar 5-7")

    let everyDay = try CronExpression("0 0 * * *")
    #expect(everyDay.daysOfMonth == Set(1...31))
    #expect(everyDay.daysOfWeek == Set(0...6))
    #expect(everyDay.dayOfMonthIsWildcard && everyDay.dayOfWeekIsWildcard)
}

@Test func cronExpressionInitRefusesMacrosAndWrongFieldCounts() {
    #expect(throws: ContingencyError.self) { try CronExpression("@daily") }
    #expect(throws: ContingencyError.self) { try CronExpression("0 0 0 * * *") }
}

@Test func descriptionsKeepTheTextAsWritten() throws {
    #expect(try Schedule.parse("  0 3 * * *  ").description == "0 3 * * *")
    #expect(try Schedule.parse("@daily").description == "@daily")
    #expect(try Schedule.parse("0 9 * * MON-FRI").description == "0 9 * * MON-FRI")
}

@Test(arguments: [
    ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"), ("@weekly", "0 0 * * 0"), ("@weekly", "0 0 * * 7"),
    ("@monthly", "0 0 1 * *"), ("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 jan *"), ("@hourly", "0 * * * *"),
    ("0 0 * * 0-6", "0 0 * * sun-sat"), ("1h30m", "90m"), ("@every 24h", "1d"),
])
func equivalentSchedulesAreEqual(_ pair: (String, String)) throws {
    #expect(try Schedule.parse(pair.0) == Schedule.parse(pair.1))
}

@Test(arguments: [("0 0 * * *", "0 1 * * *"), ("0 0 1 * 5", "0 0 1 * *"), ("30m", "31m"), ("@hourly", "1h")])
func differentSchedulesAreNotEqual(_ pair: (String, String)) throws {
    #expect(try Schedule.parse(pair.0) != Schedule.parse(pair.1))
}

@Test(arguments: [("90s", 90), ("5m", 300), ("1h30m", 5_400), ("2d", 172_800), ("0s", 0), (" 10m ", 600)])
func parseIntervalReadsDurations(_ pair: (String, Int)) {
    #expect(Schedule.parseInterval(pair.0) == pair.1)
}

@Test(arguments: ["90", "", "5x", "@every 5m", "m", "1h 30m", "-5m"])
func parseIntervalRejectsNonDurations(_ text: String) {
    #expect(Schedule.parseInterval(text) == nil)
}

// MARK: - Cross-check against a minute-by-minute search

/// The first minute after `after` that matches `expression`, found by trying every minute for 70 days.
/// Days are read through Foundation's calendar, independent of the implementation's own date arithmetic
/// and skipping.
private func bruteForceNextFire(_ expression: CronExpression, after: Date, calendar: Calendar) -> Date? {
    var minute = Int64((after.timeIntervalSince1970 / 60).rounded(.down)) + 1
    var dayMatchCache: (day: Int64, matches: Bool)?
    for _ in 0..<(70 * 1_440) {
        defer { minute += 1 }
        let day = Int64((Double(minute) / 1_440).rounded(.down))
        if dayMatchCache?.day != day {
            let date = Date(timeIntervalSince1970: TimeInterval(day * 86_400))
            let parts = calendar.dateComponents([.day, .month, .weekday], from: date)
            guard let dayOfMonth = parts.day, let month = parts.month, let weekday = parts.weekday else { return nil }
            let domMatch = expression.daysOfMonth.contains(dayOfMonth)
            let dowMatch = expression.daysOfWeek.contains(weekday - 1)
            let dayMatch =
                expression.dayOfMonthIsWildcard || expression.dayOfWeekIsWildcard
                ? domMatch && dowMatch : domMatch || dowMatch
            dayMatchCache = (day, dayMatch && expression.months.contains(month))
        }
        let minuteOfDay = Int(minute - day * 1_440)
        if dayMatchCache?.matches == true, expression.hours.contains(minuteOfDay / 60),
            expression.minutes.contains(minuteOfDay % 60)
        {
            return Date(timeIntervalSince1970: TimeInterval(minute * 60))
        }
    }
    return nil
}

@Test(arguments: [
    "*/7 3-5 * * *", "0 0 1,15 * 5", "15 10 * * mon-fri", "0 */6 13 * fri", "45 23 28-31 * *", "0 12 * 3,4 sun",
    "0 0 */2 * 5", "5/20 1-3 * * 7",
])
func nextFireAgreesWithBruteForce(_ text: String) throws {
    let expression = try CronExpression(text)
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = try #require(TimeZone(identifier: "UTC"))
    for start in [
        "2025-01-15T14:30:00Z", "2025-02-27T23:59:59Z", "2025-03-30T04:56:30Z", "2024-12-31T23:45:00Z",
        "2024-02-28T10:00:00Z",
    ] {
        let after = utc(start)
        let expected = try #require(
            bruteForceNextFire(expression, after: after, calendar: calendar),
            "\(text) has no match within 70 days of \(start)")
        #expect(iso(expression.nextFire(after: after)) == iso(expected), "\(text) after \(start)")
    }
}

@Test func nextFireSkipsRatherThanWalkingMinutes() throws {
    // Chaining a leap-day schedule across four centuries would take ~200 million minute steps if walked.
    let schedule = try Schedule.parse("0 0 29 2 *")
    var date = utc("2001-01-01T00:00:00Z")
    let end = utc("2401-01-01T00:00:00Z")
    var count = 0
    let elapsed = ContinuousClock().measure {
        while case let next = schedule.nextFire(after: date), next < end {
            #expect(next > date)
            date = next
            count += 1
        }
    }
    // Leap years in 2001-2400: 100 per 400 years minus 2100, 2200, 2300 → 97.
    #expect(count == 97)
    #expect(elapsed < .seconds(2))
}
