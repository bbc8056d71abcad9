/// One metric family of Prometheus' text exposition format: its name, HELP, TYPE and samples.
public struct MetricFamily: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case counter, gauge, histogram, summary, untyped
    }

    public var name: String
    public var help: String
    public var kind: Kind
    public var samples: [MetricSample]

    public init(name: String, help: String, kind: Kind, samples: [MetricSample] = []) {
        self.name = name
        self.help = help
        self.kind = kind
        self.samples = samples
    }

    /// The value of the sample named like the family with exactly these labels (in any order), if any.
    public func value(_ labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && $0.labelDictionary == labels }?.value
    }
}

/// One sample: `name{label="value",…} value`.
public struct MetricSample: Sendable, Equatable {
    public var name: String
    /// In the order written.
    public var labels: [Label]
    public var value: Double

    public struct Label: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    public init(name: String, labels: [Label] = [], value: Double) {
        self.name = name
        self.labels = labels
        self.value = value
    }

    public var labelDictionary: [String: String] {
        Dictionary(labels.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
    }

    /// What identifies the series to Prometheus: its name and its labels whatever their order, a label whose
    /// value is empty being no label at all.
    var seriesKey: String {
        let present = labels.filter { !$0.value.isEmpty }.sorted { $0.name < $1.name }
        return PrometheusText.render(
            [
                MetricFamily(
                    name: name, help: "", kind: .untyped, samples: [MetricSample(name: name, labels: present, value: 0)])
            ])
    }
}

/// Prometheus' text exposition format (version 0.0.4): the subset the jobs write to the store and the sidecar
/// serves (HELP, TYPE, samples with labels; timestamps are checked and dropped).
///
/// Written by hand rather than taken from swift-prometheus: that library renders its own in-process registry but
/// does not read the format, and the sidecar must read the files the jobs published to merge them with its own
/// registry into one valid scrape (a family may appear once only). The files come from a store others can
/// write, so the reader works on bytes, in one pass (no grapheme clustering: a CR or a combining mark is never
/// joined to the newline or the quote before it), and refuses what it would not render back faithfully:
/// control characters, unknown escapes, a label named twice.
public enum PrometheusText {
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public let line: Int
        public let reason: String
        public var description: String { "line \(line): \(reason)" }
    }

    /// The families of `text`, in the order they first appear. Lines may end in LF or CRLF.
    public static func parse(_ text: String) throws(ParseError) -> [MetricFamily] {
        var families: [MetricFamily] = []
        var index: [String: Int] = [:]
        func family(_ name: String) -> Int {
            if let position = index[name] { return position }
            families.append(MetricFamily(name: name, help: "", kind: .untyped))
            index[name] = families.count - 1
            return families.count - 1
        }
        var current: Int?
        let bytes = Array(text.utf8)
        var lineStart = 0
        var number = 0
        while lineStart < bytes.count {
            number += 1
            var lineEnd = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
            let next = lineEnd + 1
            if lineEnd > lineStart, bytes[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
            defer { lineStart = next }
            var line = Cursor(bytes: bytes, position: lineStart, end: lineEnd, line: number)
            if let bad = bytes[lineStart..<lineEnd].first(where: { $0 < 0x20 && $0 != UInt8(ascii: "\t") }) {
                throw ParseError(line: number, reason: "control character \(bad) in the line")
            }
            line.skipSpaces()
            if line.atEnd { continue }
            if line.peek == UInt8(ascii: "#") {
                line.advance()
                guard line.skipSpaces() > 0 else { continue }
                let keyword = line.word()
                guard keyword == "HELP" || keyword == "TYPE", line.skipSpaces() > 0 else { continue }
                let name = line.word()
                guard isMetricName(name) else { throw ParseError(line: number, reason: "\(keyword) names no metric") }
                let position = family(name)
                if keyword == "HELP" {
                    if line.peek == UInt8(ascii: " ") || line.peek == UInt8(ascii: "\t") { line.advance() }
                    families[position].help = line.helpText()
                } else {
                    line.skipSpaces()
                    let type = line.word()
                    line.skipSpaces()
                    guard let kind = MetricFamily.Kind(rawValue: type), line.atEnd else {
                        throw ParseError(line: number, reason: "unknown type \(type.prefix(40))")
                    }
                    families[position].kind = kind
                }
                current = position
                continue
            }
            let sample = try line.sample()
            let owner: Int
            if let current, belongs(sample.name, to: families[current]) {
                owner = current
            } else if let known = index[sample.name] {
                owner = known
            } else {
                owner = family(sample.name)
            }
            families[owner].samples.append(sample)
            current = owner
        }
        return families
    }

    /// `families` in the text format, each with its HELP and TYPE.
    public static func render(_ families: [MetricFamily]) -> String {
        var text = ""
        for family in families where !family.samples.isEmpty {
            if !family.help.isEmpty { text += "# HELP \(family.name) \(escape(family.help, quotes: false))\n" }
            text += "# TYPE \(family.name) \(family.kind.rawValue)\n"
            for sample in family.samples {
                text += sample.name
                if !sample.labels.isEmpty {
                    let labels = sample.labels.map { "\($0.name)=\"\(escape($0.value, quotes: true))\"" }
                    text += "{" + labels.joined(separator: ",") + "}"
                }
                text += " " + format(sample.value) + "\n"
            }
        }
        return text
    }

    /// One list of families from several sources (the sidecar's registry, the store, each job's file), valid
    /// whatever the sources hold:
    /// - a family named in several keeps the first source's HELP and TYPE and gathers every source's samples;
    ///   a later family of the same name but another TYPE is dropped;
    /// - a series (name and labels) already given by an earlier source is dropped;
    /// - a family whose samples' names another family already owns (`x_count` beside a histogram `x`, or the
    ///   other way round) is dropped;
    /// - a family without samples is left out.
    public static func merge(_ sources: [[MetricFamily]]) -> [MetricFamily] {
        var merged: [MetricFamily] = []
        var index: [String: Int] = [:]
        var owner: [String: Int] = [:]
        var series = Set<String>()
        for source in sources {
            for family in source where !family.samples.isEmpty {
                let position: Int
                if let known = index[family.name] {
                    guard merged[known].kind == family.kind else { continue }
                    position = known
                } else {
                    let names = sampleNames(of: family)
                    guard names.allSatisfy({ owner[$0] == nil }) else { continue }
                    merged.append(MetricFamily(name: family.name, help: family.help, kind: family.kind))
                    position = merged.count - 1
                    index[family.name] = position
                    for name in names { owner[name] = position }
                }
                for sample in family.samples
                where owner[sample.name] == position && series.insert(sample.seriesKey).inserted {
                    merged[position].samples.append(sample)
                }
            }
        }
        return merged.filter { !$0.samples.isEmpty }
    }

    /// A value as Prometheus writes it: integers without a fraction, `+Inf`, `-Inf`, `NaN`.
    public static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value.rounded() == value, abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    // MARK: - Names

    static func isMetricName(_ name: some StringProtocol) -> Bool {
        guard let first = name.utf8.first, first == UInt8(ascii: "_") || first == UInt8(ascii: ":") || first.isLetter
        else {
            return false
        }
        return name.utf8.allSatisfy { $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ":") || $0.isLetter || $0.isDigit }
    }

    /// A label name, not one of those Prometheus reserves (`__name__` and every other `__` name): a sample
    /// carrying one makes Prometheus refuse the whole scrape.
    static func isLabelName(_ name: some StringProtocol) -> Bool {
        isMetricName(name) && !name.contains(":") && !name.hasPrefix("__")
    }

    /// The sample names a family may hold: its name, and a histogram's or summary's suffixed ones.
    private static func sampleNames(of family: MetricFamily) -> [String] {
        [family.name] + suffixes(of: family.kind).map { family.name + $0 }
    }

    private static func suffixes(of kind: MetricFamily.Kind) -> [String] {
        switch kind {
        case .histogram: ["_bucket", "_sum", "_count", "_created"]
        case .summary: ["_sum", "_count", "_created"]
        case .counter: ["_created"]
        case .gauge, .untyped: []
        }
    }

    /// Whether a sample named `sample` is part of `family` (a histogram's `_bucket`, `_sum`, `_count`…).
    private static func belongs(_ sample: String, to family: MetricFamily) -> Bool {
        sample == family.name || suffixes(of: family.kind).contains { sample == family.name + $0 }
    }

    // MARK: - Writing

    /// Escapes as the format wants: a backslash and a newline everywhere, a double quote in label values. Works
    /// on Unicode scalars, not Characters, so a combining mark after a quote cannot hide it.
    private static func escape(_ text: String, quotes: Bool) -> String {
        var result = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": result.append(contentsOf: "\\\\".unicodeScalars)
            case "\n": result.append(contentsOf: "\\n".unicodeScalars)
            case "\"" where quotes: result.append(contentsOf: "\\\"".unicodeScalars)
            default: result.append(scalar)
            }
        }
        return String(result)
    }

    // MARK: - Reading

    /// A position in one line's bytes.
    private struct Cursor {
        let bytes: [UInt8]
        var position: Int
        let end: Int
        let line: Int

        var atEnd: Bool { position >= end }
        var peek: UInt8? { atEnd ? nil : bytes[position] }
        mutating func advance() { position += 1 }

        @discardableResult
        mutating func skipSpaces() -> Int {
            let start = position
            while let byte = peek, byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { advance() }
            return position - start
        }

        /// Bytes up to a space, a tab, `{` or the end.
        mutating func word() -> String {
            let start = position
            while let byte = peek, byte != UInt8(ascii: " "), byte != UInt8(ascii: "\t"), byte != UInt8(ascii: "{") {
                advance()
            }
            return String(decoding: bytes[start..<position], as: UTF8.self)
        }

        /// The rest of the line as HELP text: `\\` and `\n` unescaped, any other backslash kept as it is.
        mutating func helpText() -> String {
            var text: [UInt8] = []
            while let byte = peek {
                advance()
                if byte == UInt8(ascii: "\\"), let escaped = peek,
                    escaped == UInt8(ascii: "\\") || escaped == UInt8(ascii: "n")
                {
                    advance()
                    text.append(escaped == UInt8(ascii: "n") ? UInt8(ascii: "\n") : escaped)
                } else {
                    text.append(byte)
                }
            }
            return String(decoding: text, as: UTF8.self)
        }

        func failure(_ reason: String) -> ParseError { ParseError(line: line, reason: reason) }

        mutating func sample() throws(ParseError) -> MetricSample {
            let name = word()
            guard isMetricName(name) else { throw failure("not a metric name: \(name.prefix(80))") }
            var labels: [MetricSample.Label] = []
            var seen = Set<String>()
            if peek == UInt8(ascii: "{") {
                advance()
                while true {
                    skipSpaces()
                    if peek == UInt8(ascii: "}") {
                        advance()
                        break
                    }
                    let start = position
                    while let byte = peek, byte.isLetter || byte.isDigit || byte == UInt8(ascii: "_") { advance() }
                    let labelName = String(decoding: bytes[start..<position], as: UTF8.self)
                    guard isLabelName(labelName) else { throw failure("not a label name at byte \(start)") }
                    guard seen.insert(labelName).inserted else { throw failure("label \(labelName) given twice") }
                    skipSpaces()
                    guard peek == UInt8(ascii: "=") else { throw failure("label \(labelName) has no value") }
                    advance()
                    skipSpaces()
                    guard peek == UInt8(ascii: "\"") else { throw failure("label \(labelName)'s value is not quoted") }
                    advance()
                    var value: [UInt8] = []
                    var closed = false
                    while let byte = peek {
                        advance()
                        if byte == UInt8(ascii: "\"") {
                            closed = true
                            break
                        }
                        guard byte == UInt8(ascii: "\\") else {
                            value.append(byte)
                            continue
                        }
                        switch peek {
                        case UInt8(ascii: "\\"), UInt8(ascii: "\""): value.append(peek!)
                        case UInt8(ascii: "n"): value.append(UInt8(ascii: "\n"))
                        default: throw failure("label \(labelName)'s value has an unknown escape")
                        }
                        advance()
                    }
                    guard closed else { throw failure("label \(labelName)'s value is not closed") }
                    labels.append(.init(labelName, String(decoding: value, as: UTF8.self)))
                    skipSpaces()
                    if peek == UInt8(ascii: ",") {
                        advance()
                    } else if peek != UInt8(ascii: "}") {
                        throw failure("labels of \(name) are not separated by commas")
                    }
                }
            }
            guard skipSpaces() > 0 else { throw failure("\(name) has no value") }
            guard let value = PrometheusText.value(word()) else { throw failure("\(name) has no valid value") }
            if skipSpaces() > 0, !atEnd {
                let timestamp = word()
                guard Int64(timestamp) != nil else { throw failure("\(name)'s timestamp is not an integer") }
                skipSpaces()
            }
            guard atEnd else { throw failure("\(name) has more than a value and a timestamp") }
            return MetricSample(name: name, labels: labels, value: value)
        }
    }

    private static func value(_ text: String) -> Double? {
        switch text {
        case "+Inf", "Inf": return .infinity
        case "-Inf": return -.infinity
        case "NaN": return .nan
        default: return Double(text)
        }
    }
}

extension UInt8 {
    fileprivate var isLetter: Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
    }
    fileprivate var isDigit: Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) }
}
