import Foundation

/// Polls `condition` every `pollInterval` until it returns true, and throws an
/// `EventuallyTimeoutError` naming `what` if that has not happened within `timeout`.
///
/// Use it to wait for something to happen (a file to appear, a server to accept connections,
/// a job to reach a stage) instead of sleeping a fixed time. An error thrown by `condition` is
/// rethrown at once (make the condition return false instead when an error means "not yet").
/// The condition runs in the caller's isolation, so it may touch the caller's state.
/// Task cancellation ends the wait with `CancellationError`.
public func eventually(
    timeout: Duration = .seconds(30),
    pollInterval: Duration = .milliseconds(20),
    _ what: String,
    isolation: isolated (any Actor)? = #isolation,
    _ condition: () async throws -> Bool
) async throws {
    let clock = ContinuousClock()
    let start = clock.now
    let deadline = start.advanced(by: timeout)
    var attempts = 0
    while true {
        attempts += 1
        if try await condition() { return }
        let now = clock.now
        if now >= deadline {
            throw EventuallyTimeoutError(what: what, timeout: timeout, attempts: attempts, waited: now - start)
        }
        try await Task.sleep(for: min(pollInterval, deadline - now))
    }
}
