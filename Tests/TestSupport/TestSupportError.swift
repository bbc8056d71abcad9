/// A failure inside the test-support harness itself (setup, fixtures, helpers), with a readable message.
public struct TestSupportError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, including any output that helps diagnose it.
    public let message: String

    /// Creates an error carrying `message`.
    public init(_ message: String) {
        self.message = message
    }

    /// The message.
    public var description: String { message }
}
