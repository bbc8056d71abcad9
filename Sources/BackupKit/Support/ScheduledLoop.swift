import BackupCore
import Foundation
import Logging

/// Runs work at every fire time of a schedule, for the `--loop` modes. A failed run is logged and the loop
/// goes on to the next time; only the loop's own cancellation (SIGTERM) ends it, at once while idle.
/// With `liveness`, its file is touched for as long as the loop runs.
enum ScheduledLoop {
    static func run(
        _ schedule: Schedule, what: String, logger: Logger, liveness: Liveness? = nil, _ body: () async throws -> Void
    ) async throws {
        guard let liveness else { return try await loop(schedule, what: what, logger: logger, body) }
        try await liveness.whileRunning(logger: logger) { try await loop(schedule, what: what, logger: logger, body) }
    }

    private static func loop(_ schedule: Schedule, what: String, logger: Logger, _ body: () async throws -> Void) async throws {
        while !Task.isCancelled {
            let next = schedule.nextFire(after: Date())
            logger.info("Next \(what) at \(ISO8601DateFormatter().string(from: next)) (schedule \(schedule))")
            guard await JobRunner.sleep(until: next) else { return }
            do {
                try await body()
                logger.info("Scheduled \(what) completed successfully")
            } catch {
                if Task.isCancelled { throw error }
                logger.error("Scheduled \(what) failed: \(error)")
            }
        }
    }
}
