import BackupCore
import Foundation
import Logging

/// Log lines as the runbook shows them (`[Backup] Backup created successfully: …`), or one JSON object per
/// line with `LOG_FORMAT=json`. Warnings and errors go to stderr, the rest to stdout.
///
/// One event is one line: messages and metadata values carry names from outside (file names in the uploads,
/// backup names from the store or `LATEST_BACKUP`, servers' error texts), so their control characters are
/// escaped (`escapingControls`) in both formats; a name can neither forge a log line nor drive the terminal.
public struct JobLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let label: String
    private let format: LogFormat

    public init(label: String, format: LogFormat) {
        self.label = label
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let line: String
        switch format {
        case .text:
            // A message that names its own runbook tag (`[Backup] …`, `[Rollback] …`) is printed as the runbook
            // shows it, not under this logger's label as well.
            let message = Self.escapingControls("\(event.message)")
            line = Self.startsWithTag(message) ? message : "[\(label)] \(message)"
        case .json:
            var object: [String: String] = [
                "time": ISO8601DateFormatter().string(from: Date()),
                "level": event.level.rawValue,
                "component": label,
                "message": Self.escapingControls("\(event.message)"),
            ]
            for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
                object[Self.escapingControls(key)] = Self.escapingControls("\(value)")
            }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            line = String(decoding: data, as: UTF8.self)
        }
        let stream = event.level >= .warning ? FileHandle.standardError : FileHandle.standardOutput
        stream.write(Data((line + "\n").utf8))
    }

    /// Whether `message` begins with a tag like `[Rollback] `: a capital letter, then letters, in brackets.
    static func startsWithTag(_ message: String) -> Bool {
        guard message.hasPrefix("["), let end = message.firstIndex(of: "]") else { return false }
        let tag = message[message.index(after: message.startIndex)..<end]
        return (1...20).contains(tag.count) && tag.first?.isUppercase == true && tag.allSatisfy { $0.isASCII && $0.isLetter }
            && message[message.index(after: end)...].hasPrefix(" ")
    }

    /// `text` with every character that could end a line or steer a terminal written as an escape: `\n`, `\r`,
    /// `\t`, other C0 controls and DEL as `\x1b`, C1 controls (U+0080–U+009F, which some terminals obey as
    /// ESC sequences), the Unicode line and paragraph separators and the bidirectional overrides and isolates
    /// (which reorder what a reader sees) as `\u{9b}`. Everything else, backslashes included, is kept.
    public static func escapingControls(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isEscaped) else { return text }
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count + 16)
        for scalar in text.unicodeScalars {
            guard isEscaped(scalar) else {
                escaped.unicodeScalars.append(scalar)
                continue
            }
            switch scalar {
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\t": escaped += "\\t"
            case _ where scalar.value < 0x80:
                escaped += "\\x" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
            default: escaped += "\\u{" + String(scalar.value, radix: 16) + "}"
            }
        }
        return escaped
    }

    private static func isEscaped(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: return true  // C0, DEL, C1
        case 0x2028, 0x2029: return true  // line and paragraph separators
        case 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true  // bidirectional marks, overrides, isolates
        default: return false
        }
    }

    /// A logger labelled like the runbook's lines: "Backup", "Restore", "Cleanup", "Rollback".
    public static func logger(_ label: String, format: LogFormat) -> Logger {
        Logger(label: label) { _ in JobLogHandler(label: label, format: format) }
    }
}
