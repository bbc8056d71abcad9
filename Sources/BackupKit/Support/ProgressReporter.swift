import BackupCore
import BackupStorage
import Foundation
import Logging

/// Logs a progress line at most every `interval` seconds during long work, so an operator watching the
/// logs of a 40 GB backup sees it move.
public final class ProgressReporter: @unchecked Sendable {
    private let logger: Logger
    private let interval: TimeInterval
    private let started = Date()
    // Touched from the job's thread and from a polling task: guarded.
    private let lock = NSLock()
    private var lastReport = Date()

    public init(logger: Logger, interval: TimeInterval = 10) {
        self.logger = logger
        self.interval = interval
    }

    /// Reports `what` with `bytes` done so far, if the interval has passed since the last report.
    public func update(_ what: String, bytes: Int64) {
        let now = Date()
        let due = lock.withLock {
            guard now.timeIntervalSince(lastReport) >= interval else { return false }
            lastReport = now
            return true
        }
        guard due else { return }
        let elapsed = now.timeIntervalSince(started)
        logger.info(
            "Progress: \(what): \(ByteFormat.string(bytes)) after \(DurationFormat.string(seconds: elapsed)) (\(ByteFormat.rate(bytes: bytes, seconds: elapsed)))"
        )
    }
}
