import Foundation

/// Reads a `--loop` job's standard output to tell what state the loop is in, so that a test signals it in
/// the state it means, however fast or slow the machine is.
public enum LoopOutput {
    /// Whether the loop is idle now and stays idle for at least `margin` seconds: the last line printed is its
    /// announcement `<marker> <ISO 8601 time> …` ("Next backup at 2026-01-01T00:00:05Z (schedule @every 5s)"),
    /// nothing was printed after it (no run started), and that time is at least `margin` ahead of `now`.
    /// A count of announcements is not enough: it stays true after the loop has moved on to its next run.
    public static func isIdle(_ output: String, marker: String, margin: TimeInterval = 1.5, now: Date = Date()) -> Bool
    {
        guard let range = output.range(of: marker, options: .backwards) else { return false }
        let rest = output[range.upperBound...].split(separator: "\n", omittingEmptySubsequences: true)
        guard rest.count == 1, let word = rest[0].split(separator: " ").first,
            let next = ISO8601DateFormatter().date(from: String(word))
        else { return false }
        return next.timeIntervalSince(now) >= margin
    }
}
