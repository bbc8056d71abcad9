import Foundation
import Synchronization

/// A helper server's process (moto, the fault proxy), stopped at most once however many callers ask: a test's
/// `with { }`, an explicit `stop()` and the owner's `deinit`.
final class ServerProcess: Sendable {
    let process: LaunchedProcess
    private let stopped = Mutex(false)

    init(_ process: LaunchedProcess) { self.process = process }

    /// Whether `stop()` ran (or is running).
    var isStopped: Bool { stopped.withLock { $0 } }

    /// SIGTERM, then SIGKILL to the process group after 5 seconds; returns once the process is gone. Runs to
    /// completion even if the calling task is cancelled. Idempotent.
    func stop() async {
        let wasStopped = stopped.withLock { value -> Bool in
            defer { value = true }
            return value
        }
        guard !wasStopped else { return }
        let process = self.process
        await Task.detached { _ = await process.terminateAndWait(gracePeriod: .seconds(5)) }.value
    }

    /// Runs `body` with `server`, then stops it with `stop`, whether `body` returns or throws.
    static func run<Server: Sendable, T>(
        _ server: Server, stoppingWith stop: (Server) async -> Void, isolation: isolated (any Actor)? = #isolation,
        _ body: (Server) async throws -> T
    ) async throws -> T {
        let result: T
        do {
            result = try await body(server)
        } catch {
            await stop(server)
            throw error
        }
        await stop(server)
        return result
    }
}
