import Foundation

/// Thrown by `eventually` when its condition did not become true in time.
public struct EventuallyTimeoutError: Error, CustomStringConvertible, Sendable {
    /// The description of the awaited condition, as passed to `eventually`.
    public let what: String
    /// The time limit that was exceeded.
    public let timeout: Duration
    /// How many times the condition was evaluated.
    public let attempts: Int
    /// How long was actually waited.
    public let waited: Duration

    /// A sentence naming the condition and the time waited.
    public var description: String {
        "Timed out after \(Self.seconds(waited)) (limit \(Self.seconds(timeout))) waiting for: \(what) "
            + "(condition evaluated \(attempts) times)"
    }

    static func seconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let value = Double(seconds) + Double(attoseconds) / 1e18
        return String(format: "%.3fs", value)
    }
}
