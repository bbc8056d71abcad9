import BackupCore
import CoreMetrics
import Foundation
import Logging

/// How a store retries a transient fault, in one place for the two that do: `RetryingStorage` (whole store
/// operations, for every store) and the bucket's `S3Client` (the requests inside a stream, which cannot be
/// repeated whole). `retries` times (`S3_RETRIES`), exponential backoff with full jitter between attempts, each
/// retry logged (`<what>: <fault>; retrying in Xs (attempt N of M)`) and counted in
/// `contingency_store_retries_total{store}` once `countRetries(in:store:)` names the factory.
///
/// Thread-safe: the counter is set once, possibly after requests have started, and read under a lock.
final class RetryPolicy: @unchecked Sendable {
    let retries: Int
    let logger: Logger?
    private let lock = NSLock()
    private var counter: Counter?

    init(retries: Int, logger: Logger?) {
        self.retries = max(0, retries)
        self.logger = logger
    }

    /// Counts, from now on, each retry in `factory` as `contingency_store_retries_total{store}`.
    func countRetries(in factory: any MetricsFactory, store: StoreKind) {
        let counter = Counter(
            label: "contingency_store_retries_total", dimensions: [("store", store.rawValue)], factory: factory)
        lock.withLock { self.counter = counter }
    }

    /// Runs `attempt` until it returns, throws anything but a `TransientStoreFault`, or has met `retries + 1`
    /// transient faults (then throws `TransientStoreFault.exhausted`). Between attempts it waits the backoff in
    /// steps of 0.1 s, and stops waiting (throws `.cancelled`) as soon as `shouldStop` says so.
    func run<T>(stoppingWhen shouldStop: () -> Bool, _ attempt: () throws -> T) throws -> T {
        var failures = 0
        while true {
            let fault: TransientStoreFault
            do {
                return try attempt()
            } catch let transient as TransientStoreFault {
                fault = transient
            }
            failures += 1
            guard failures <= retries else { throw fault.exhausted(attempts: failures) }
            lock.withLock { counter }?.increment()
            let delay = Self.backoff(attempt: failures)
            let seconds = String(format: "%.1f", delay)
            let next = "attempt \(failures + 1) of \(retries + 1)"
            logger?.warning("\(fault.operation): \(fault.fault); retrying in \(seconds)s (\(next))")
            let wakeUp = Date().addingTimeInterval(delay)
            while Date() < wakeUp {
                if shouldStop() {
                    throw ContingencyError.cancelled("\(fault.operation) not retried: the job was cancelled")
                }
                Thread.sleep(forTimeInterval: max(0, min(0.1, wakeUp.timeIntervalSinceNow)))
            }
        }
    }

    /// Full jitter (a random wait up to an exponentially growing cap, 0.2 s doubling to 8 s) spreads out many
    /// clients retrying at once.
    static func backoff(attempt: Int) -> Double {
        let cap = min(8.0, 0.2 * pow(2.0, Double(attempt - 1)))
        return Double.random(in: 0.05...cap)
    }

    /// Whether the task that runs the caller (synchronously, on its thread) is cancelled: a job's SIGTERM. Work
    /// run outside any task (`Blocking.run`) is never cancelled this way.
    static let whenTaskCancelled: @Sendable () -> Bool = { withUnsafeCurrentTask { $0?.isCancelled ?? false } }
}
