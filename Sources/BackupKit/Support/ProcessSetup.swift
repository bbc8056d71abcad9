import BackupInterop
import Foundation

/// What every process of ours sets up once, before any work: the one place for process-wide state, shared by
/// the one-shot jobs (`JobRunner.run`) and the sidecar's ServiceGroup, so neither sets it twice or differently.
///
/// Signals are not handled here: a process has exactly one owner of SIGTERM/SIGINT, either `JobRunner.run`
/// (DispatchSource handlers that cancel the job's task) or, for `health-sidecar --loop`, swift-service-lifecycle's
/// ServiceGroup (graceful shutdown). The sidecar's `--loop` path never goes through `JobRunner.run`, so the two
/// never fight over a signal.
public enum ProcessSetup {
    /// Idempotent and thread-safe (a lazily initialized global runs once).
    public static func once() { _ = done }

    private static let done: Void = {
        // A child that exits while we still feed its standard input (pg_restore on an error), or an HTTP client
        // that hangs up mid-response, must give us EPIPE, not kill the process with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        MemoryTuning.returnLargeBuffersToSystem()
    }()

    /// For a long-running process, once it has started: gives back the read-only pages only the start touched
    /// (`StartupPages`). Returns the bytes advised.
    @discardableResult
    public static func releaseStartupPages() -> Int { StartupPages.release() }
}
