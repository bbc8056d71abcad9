import Dispatch
import Foundation

/// Runs blocking work (libcurl, libpq, the `Storage` protocol's file and network calls, compression) on a
/// thread of its own instead of Swift's cooperative pool: the pool has one thread per core (two here), and a
/// probe or a store write that blocks on it would stall the sidecar's HTTP server and every other task.
public enum Blocking {
    private static let queue = DispatchQueue(label: "contingency.blocking", qos: .utility, attributes: .concurrent)

    public static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try work() }) }
        }
    }

    public static func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: work()) }
        }
    }
}
