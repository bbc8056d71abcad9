import BackupCore
import BackupInterop
import Foundation
import Logging

/// One health probe, as the runbook defines health: HTTP 200 from the endpoint within the timeout, no
/// network error.
public struct HealthProbe: Sendable {
    public let configuration: HealthConfiguration

    public init(configuration: HealthConfiguration) { self.configuration = configuration }

    /// What one probe found.
    public struct Outcome: Sendable, Equatable {
        public let healthy: Bool
        /// The HTTP status, or nil when no response came.
        public let status: Int?
        public let duration: TimeInterval
        /// Why it is unhealthy, for the log.
        public let reason: String?
    }

    public func probe() -> Outcome {
        let started = Date()
        do {
            let response = try CurlEasy().get(configuration.url, timeout: Double(configuration.timeoutSeconds))
            let duration = Date().timeIntervalSince(started)
            return Outcome(
                healthy: response.status == 200, status: response.status, duration: duration,
                reason: response.status == 200 ? nil : "HTTP \(response.status)")
        } catch {
            return Outcome(healthy: false, status: nil, duration: Date().timeIntervalSince(started), reason: "\(error)")
        }
    }

    /// Probes once and logs the result the runbook's way.
    public func probeOnce(logger: Logger) -> Outcome {
        let outcome = probe()
        let target = CurlEasy.redacted(configuration.url)
        let took = DurationFormat.string(seconds: outcome.duration)
        if outcome.healthy {
            logger.info("Application is healthy (\(target): HTTP 200 in \(took))")
        } else {
            logger.warning("Application is unhealthy (\(target): \(outcome.reason ?? "no answer") after \(took))")
        }
        return outcome
    }
}
