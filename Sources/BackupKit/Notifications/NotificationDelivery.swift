import BackupCore
import BackupInterop
import Foundation
import Logging
import Synchronization

/// Sends one message to one HTTP destination within a time budget: attempts through libcurl off the
/// cooperative pool (`Blocking`), retried with backoff after a network error, HTTP 5xx or 429, never after another
/// 4xx. Gives up when the budget is spent. Failure is logged (naming only the destination's scheme, host and
/// port: a webhook's path is its secret) and counted; it is never thrown.
struct NotificationDelivery: Sendable {
    let url: String
    let destination: NotificationCounters.Destination
    let timeoutSeconds: Double
    let retries: Int
    let logger: Logger

    private enum Attempt: Sendable {
        case delivered
        /// Worth another try; `after`: the seconds a 429's or 503's `Retry-After` asked for.
        case retryable(String, after: Double?)
        case refused(String)
    }

    /// Returns whether the destination accepted it (HTTP 2xx).
    @discardableResult
    func send(_ body: [UInt8], contentType: String, what: String) async -> Bool {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        var attempts = 0
        var problem = "not sent"
        var retryAfter: Double?
        while true {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0.05 else {
                problem += "; gave up after \(DurationFormat.string(seconds: timeoutSeconds)) (NOTIFY_TIMEOUT)"
                break
            }
            attempts += 1
            let url = url
            let result = await Blocking.run {
                Self.attempt(url: url, body: body, contentType: contentType, timeout: remaining)
            }
            switch result {
            case .delivered:
                NotificationCounters.record(destination, delivered: true)
                return true
            case .refused(let reason):
                problem = reason
                return failed(what, problem, attempts: attempts)
            case .retryable(let reason, let after):
                problem = reason
                retryAfter = after
            }
            guard attempts <= retries else { break }
            let backoff = retryAfter ?? min(0.5 * Double(1 << min(attempts - 1, 4)), 8)
            guard Date().addingTimeInterval(backoff) < deadline else {
                problem +=
                    "; no time left for another try within \(DurationFormat.string(seconds: timeoutSeconds)) (NOTIFY_TIMEOUT)"
                break
            }
            // Unstructured delivery tasks are never cancelled; should one be, it stops retrying.
            do { try await Task.sleep(for: .milliseconds(Int(backoff * 1000))) } catch { break }
        }
        return failed(what, problem, attempts: attempts)
    }

    private func failed(_ what: String, _ problem: String, attempts: Int) -> Bool {
        NotificationCounters.record(destination, delivered: false)
        logger.warning(
            "Notification not delivered: \(what) to \(NotificationSettings.destination(url)) failed after \(attempts) \(attempts == 1 ? "attempt" : "attempts"): \(problem); the job itself is not affected"
        )
        return false
    }

    private static func attempt(url: String, body: [UInt8], contentType: String, timeout: Double) -> Attempt {
        do {
            let response = try CurlEasy().post(url, body: body, contentType: contentType, timeout: timeout)
            switch response.status {
            case 200..<300: return .delivered
            case 429, 500..<600:
                // Slack answers 429 with Retry-After (seconds); an HTTP date or nonsense falls back to the backoff.
                let after = response.headers["retry-after"].flatMap(Double.init).map { max(0, $0) }
                return .retryable("HTTP \(response.status)", after: after)
            default: return .refused("HTTP \(response.status)\(Self.excerpt(response.body))")
            }
        } catch let error as CurlTransportError {
            return error.isTransient ? .retryable(error.message, after: nil) : .refused(error.message)
        } catch {
            return .refused("\(error)")
        }
    }

    /// The start of a refusal's body (Slack says why: "invalid_token", "no_text"), one line, short.
    private static func excerpt(_ body: [UInt8]) -> String {
        let text = String(decoding: body.prefix(200), as: UTF8.self)
            .split(whereSeparator: \.isNewline).joined(separator: " ").trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty, text.unicodeScalars.allSatisfy({ $0.value >= 0x20 }) else { return "" }
        return " (\(text))"
    }
}

/// Runs deliveries to one destination one after the other, in the order they were queued, on tasks of their
/// own: the publisher never waits for the network. `drain` waits for what is queued.
final class DeliveryChain: Sendable {
    private let last = Mutex<Task<Void, Never>?>(nil)

    func enqueue(_ work: @escaping @Sendable () async -> Void) {
        last.withLock { last in
            let previous = last
            last = Task {
                await previous?.value
                await work()
            }
        }
    }

    func drain() async {
        let task = last.withLock { $0 }
        await task?.value
    }
}
