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

    /// What identifies the series: its name and its labels, whatever their order.
    var seriesKey: String {
        name + "{" + labels.sorted { $0.name < $1.name }.map { "\($0.name)=\"\($0.value)\"" }.joined(separator: ",") + "}"
    }
}

/// Prometheus' text exposition format (version 0.0.4): the subset the jobs write to the store and the sidecar
/// serves (HELP, TYPE, samples with labels; timestamps are read and dropped).
///
/// Written by hand rather than taken from swift-prometheus: that library renders its own in-process registry but
/// does not read the format, and the sidecar must read the files the jobs published to merge them with its own
/// registry into one valid scrape (a family may appear once only).
public enum PrometheusText {
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public let line: Int
        public let reason: String
        public var description: String { "line \(line): \(reason)" }
    }

    /// The families of `text`, in the order they first appear.
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
        for (offset, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingSpaces
            let number = offset + 1
            if line.isEmpty { continue }
            if line.hasPrefix("#") {
                let words = line.dropFirst().trimmingSpaces.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
                guard words.count >= 2, words[0] == "HELP" || words[0] == "TYPE" else { continue }
                let name = String(words[1])
                guard isMetricName(name) else { throw ParseError(line: number, reason: "\(words[0]) names no metric") }
                let rest = words.count > 2 ? String(words[2]) : ""
                let position = family(name)
                if words[0] == "HELP" {
                    families[position].help = unescape(rest, quotes: false)
                } else {
                    guard let kind = MetricFamily.Kind(rawValue: String(rest.trimmingSpaces)) else {
                        throw ParseError(line: number, reason: "unknown type \(rest)")
                    }
                    families[position].kind = kind
                }
                current = position
                continue
            }
            let sample = try parseSample(line, number: number)
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
                    text += "{" + sample.labels.map { "\($0.name)=\"\(escape($0.value, quotes: true))\"" }.joined(separator: ",") + "}"
                }
                text += " " + format(sample.value) + "\n"
            }
        }
        return text
    }

    /// One list of families from several sources (the sidecar's registry, the store, each job's file): a family
    /// named in several keeps the first HELP and TYPE and gathers every source's samples; a series (name and
    /// labels) already given by an earlier source is dropped, so the scrape stays valid whatever the sources hold.
    public static func merge(_ sources: [[MetricFamily]]) -> [MetricFamily] {
        var merged: [MetricFamily] = []
        var index: [String: Int] = [:]
        var series = Set<String>()
        for source in sources {
            for family in source {
                let position: Int
                if let known = index[family.name] {
                    position = known
                } else {
                    merged.append(MetricFamily(name: family.name, help: family.help, kind: family.kind))
                    position = merged.count - 1
                    index[family.name] = position
                }
                for sample in family.samples where series.insert(sample.seriesKey).inserted {
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

    // MARK: - Reading

    static func isMetricName(_ name: some StringProtocol) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || first == ":" || first.isASCIILetter else {
            return false
        }
        return name.unicodeScalars.allSatisfy { $0 == "_" || $0 == ":" || $0.isASCIILetter || $0.isASCIIDigit }
    }

    static func isLabelName(_ name: some StringProtocol) -> Bool {
        isMetricName(name) && !name.contains(":")
    }

    /// Whether a sample named `sample` is part of `family` (a histogram's `_bucket`, `_sum`, `_count`…).
    private static func belongs(_ sample: String, to family: MetricFamily) -> Bool {
        if sample == family.name { return true }
        let suffixes: [String]
        switch family.kind {
        case .histogram: suffixes = ["_bucket", "_sum", "_count", "_created"]
        case .summary: suffixes = ["_sum", "_count", "_created"]
        case .counter: suffixes = ["_created"]
        case .gauge, .untyped: suffixes = []
        }
        return suffixes.contains { sample == family.name + $0 }
    }

    private static func parseSample(_ line: Substring, number: Int) throws(ParseError) -> MetricSample {
        var rest = line[...]
        let nameEnd = rest.firstIndex { $0 == "{" || $0 == " " || $0 == "\t" } ?? rest.endIndex
        let name = String(rest[..<nameEnd])
        guard isMetricName(name) else { throw ParseError(line: number, reason: "not a metric name: \(name.prefix(80))") }
        rest = rest[nameEnd...]
        var labels: [MetricSample.Label] = []
        if rest.first == "{" {
            rest = rest.dropFirst()
            while true {
                rest = rest.trimmingSpaces
                if rest.first == "}" {
                    rest = rest.dropFirst()
                    break
                }
                guard let equals = rest.firstIndex(of: "=") else { throw ParseError(line: number, reason: "a label without a value") }
                let labelName = rest[..<equals].trimmingSpaces
                guard isLabelName(labelName) else { throw ParseError(line: number, reason: "not a label name: \(labelName.prefix(80))") }
                rest = rest[rest.index(after: equals)...].trimmingSpaces
                guard rest.first == "\"" else { throw ParseError(line: number, reason: "label \(labelName)'s value is not quoted") }
                rest = rest.dropFirst()
                var value = ""
                var closed = false
                while let character = rest.first {
                    rest = rest.dropFirst()
                    if character == "\\" {
                        guard let escaped = rest.first else { break }
                        rest = rest.dropFirst()
                        value.append(escaped == "n" ? "\n" : escaped)
                    } else if character == "\"" {
                        closed = true
                        break
                    } else {
                        value.append(character)
                    }
                }
                guard closed else { throw ParseError(line: number, reason: "label \(labelName)'s value is not closed") }
                labels.append(.init(String(labelName), value))
                rest = rest.trimmingSpaces
                if rest.first == "," { rest = rest.dropFirst() }
            }
        }
        let fields = rest.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard (1...2).contains(fields.count), let value = parseValue(fields[0]) else {
            throw ParseError(line: number, reason: "\(name) has no valid value")
        }
        return MetricSample(name: name, labels: labels, value: value)
    }

    private static func parseValue(_ text: Substring) -> Double? {
        switch text {
        case "+Inf", "Inf": return .infinity
        case "-Inf": return -.infinity
        case "NaN": return .nan
        default: return Double(text)
        }
    }

    private static func unescape(_ text: String, quotes: Bool) -> String {
        var result = ""
        var iterator = text.makeIterator()
        while let character = iterator.next() {
            guard character == "\\", let escaped = iterator.next() else {
                result.append(character)
                continue
            }
            switch escaped {
            case "n": result.append("\n")
            case "\\": result.append("\\")
            case "\"" where quotes: result.append("\"")
            default: result += "\\\(escaped)"
            }
        }
        return result
    }

    private static func escape(_ text: String, quotes: Bool) -> String {
        var result = ""
        for character in text {
            switch character {
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\"" where quotes: result += "\\\""
            default: result.append(character)
            }
        }
        return result
    }
}

extension StringProtocol {
    fileprivate var trimmingSpaces: SubSequence {
        let start = firstIndex { $0 != " " && $0 != "\t" && $0 != "\r" } ?? endIndex
        let end = self[start...].lastIndex { $0 != " " && $0 != "\t" && $0 != "\r" }.map { index(after: $0) } ?? start
        return self[start..<end]
    }
}

extension Unicode.Scalar {
    fileprivate var isASCIILetter: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
