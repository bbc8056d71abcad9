import BackupCore
import BackupKit
import Foundation
import TestSupport
import Testing

/// Names from outside (file names in the uploads, backup names) reach the logs; their control characters are
/// escaped, so they neither forge log lines nor drive the operator's terminal.
@Suite("Control characters in log lines")
struct LogEscapingTests {
    @Test(
        "control characters are escaped, everything else kept",
        arguments: [
            ("plain name.png", "plain name.png"),
            ("a\nb", #"a\nb"#),
            ("a\r\nb\tc", #"a\r\nb\tc"#),
            ("\u{1b}[2J\u{07}", #"\x1b[2J\x07"#),
            ("nul\u{0}del\u{7f}", #"nul\x00del\x7f"#),
            ("c1 \u{9b}31m \u{85}", #"c1 \u{9b}31m \u{85}"#),
            ("line\u{2028}sep\u{2029}", #"line\u{2028}sep\u{2029}"#),
            ("bidi \u{202e}gnp.exe\u{2066}", #"bidi \u{202e}gnp.exe\u{2066}"#),
            (#"back\slash, café, 日本, 🙂"#, #"back\slash, café, 日本, 🙂"#),
        ])
    func escaping(raw: String, shown: String) {
        #expect(JobLogHandler.escapingControls(raw) == shown)
    }

    /// The scalars no log line may hold raw (checked independently of the escaping code).
    static func controls(in line: Substring) -> [UInt32] {
        line.unicodeScalars.map(\.value).filter {
            $0 < 0x20 || (0x7F...0x9F).contains($0) || $0 == 0x2028 || $0 == 0x2029
        }
    }

    /// Every line of `output` is one of the job's log lines (`prefix`) with no raw control character.
    static func expectOnlyLogLines(_ output: String, prefix: String, sourceLocation: SourceLocation = #_sourceLocation)
    {
        for line in output.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            #expect(
                line.hasPrefix(prefix), "a line that is not a log line: \(line.debugDescription)",
                sourceLocation: sourceLocation)
            #expect(
                controls(in: line).isEmpty, "raw control characters in \(line.debugDescription)",
                sourceLocation: sourceLocation)
        }
        #expect(output.isEmpty || output.hasSuffix("\n"), sourceLocation: sourceLocation)
    }

    /// A name that tries it all: a new line that looks like a success, a carriage return, ESC sequences (clear
    /// the screen, set the window title), a C1 CSI.
    static let hostile =
        "evil\n[Backup] Backup created successfully: forged.tar.gz\r\u{1b}[2J\u{1b}]0;owned\u{07}\u{9b}31m"
    static let hostileShown =
        #"evil\n[Backup] Backup created successfully: forged.tar.gz\r\x1b[2J\x1b]0;owned\x07\u{9b}31m"#

    @Test("an uploads entry whose name holds a new line and ESC sequences: the backup's log stays one line per event")
    func uploadsName() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            // A fifo is skipped with a warning naming it; a regular file of the same kind of name is backed up.
            let fifo = app.uploadsDirectory.appendingPathComponent(Self.hostile).path
            try #require(mkfifo(fifo, 0o644) == 0)
            try Data("kept".utf8).write(to: app.uploadsDirectory.appendingPathComponent("file " + Self.hostile))
            let result = try await app.run("backup-job")
            try #require(result.succeeded, "\(result)")
            #expect(
                result.stderr.contains(
                    "Skipping \(app.uploadsDirectory.path)/\(Self.hostileShown): not a regular file"),
                "\(result.stderr)")
            Self.expectOnlyLogLines(result.stdout, prefix: "[Backup] ")
            Self.expectOnlyLogLines(result.stderr, prefix: "[Backup] ")
            #expect(
                result.stdout.split(separator: "\n").filter { $0.hasPrefix("[Backup] Backup created successfully") }
                    .count == 1)
        }
    }

    @Test(
        "a backup name with control characters in LATEST_BACKUP: the error names it escaped, in text and JSON",
        arguments: ["text", "json"])
    func backupName(format: String) async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            try #require(try await app.run("backup-job").succeeded)
            let name =
                "visual_backup_2025-01-15_14-30-00\n[Restore] Restore completed successfully\u{1b}[1A\u{9b}K.tar.gz"
            let result = try await app.run("restore-job", environment: ["LATEST_BACKUP": name, "LOG_FORMAT": format])
            #expect(!result.succeeded && result.terminationSignal == nil, "\(result)")
            let shown =
                #"visual_backup_2025-01-15_14-30-00\n[Restore] Restore completed successfully\x1b[1A\u{9b}K.tar.gz"#
            if format == "text" {
                Self.expectOnlyLogLines(result.stdout, prefix: "[Restore] ")
                Self.expectOnlyLogLines(result.stderr, prefix: "[Restore] ")
                #expect(result.stderr.contains(shown), "\(result.stderr)")
            } else {
                Self.expectOnlyLogLines(result.stdout, prefix: "{")
                Self.expectOnlyLogLines(result.stderr, prefix: "{")
                // Each line is one JSON object, whose message holds the name escaped as in the text format.
                let messages = try result.stderr.split(separator: "\n").map { line in
                    let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                    return try #require(object?["message"] as? String)
                }
                #expect(messages.contains { $0.contains(shown) }, "\(messages)")
            }
        }
    }
}
