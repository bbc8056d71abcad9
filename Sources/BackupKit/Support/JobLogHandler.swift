import BackupCore
import Foundation
import Logging

/// Log lines as the runbook shows them (`[Backup] Backup created successfully: …`), or one JSON object per
/// line with `LOG_FORMAT=json`. Warnings and errors go to stderr, the rest to stdout.
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
            line = "[\(label)] \(event.message)"
        case .json:
            var object: [String: String] = [
                "time": ISO8601DateFormatter().string(from: Date()),
                "level": event.level.rawValue,
                "component": label,
                "message": "\(event.message)",
            ]
            for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
                object[key] = "\(value)"
            }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            line = String(decoding: data, as: UTF8.self)
        }
        let stream = event.level >= .warning ? FileHandle.standardError : FileHandle.standardOutput
        stream.write(Data((line + "\n").utf8))
    }

    /// A logger labelled like the runbook's lines: "Backup", "Restore", "Cleanup", "Rollback".
    public static func logger(_ label: String, format: LogFormat) -> Logger {
        Logger(label: label) { _ in JobLogHandler(label: label, format: format) }
    }
}
