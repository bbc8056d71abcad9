import BackupCore
import Foundation
import Logging

/// The liveness file of a `--loop` process (`LIVENESS_FILE`): touched now and then every `interval` while the
/// loop runs, so that the image's `HEALTHCHECK` and a Kubernetes exec probe (`health-sidecar --liveness`) can
/// tell a live loop from a hung or dead one, whatever role (backup, drill, restore runner, sidecar) the
/// container plays.
///
/// The touch runs on a timer task of the cooperative pool: if that pool stalls, the file ages and the probe
/// fails, which is what a liveness probe is for. Nothing is removed on exit; an old file is simply stale.
public struct Liveness: Sendable {
    public let path: String
    public let interval: Duration

    public init(path: String, interval: Duration = .seconds(10)) {
        self.path = path
        self.interval = interval
    }

    /// The liveness file `LIVENESS_FILE` names, or nil when it is set empty (no file).
    public static func configured(_ values: ConfigurationValues) throws(ContingencyError) -> Liveness? {
        guard let path = try values.nonEmpty(Settings.livenessFile) else { return nil }
        return Liveness(path: path)
    }

    /// Creates the file if needed and sets its modification time to now. Never follows a symlink (the file is
    /// usually in /tmp).
    public func touch() throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0o644)
        guard fd >= 0 else {
            throw ContingencyError.failed(
                "cannot touch the liveness file \(path) (\(String(cString: strerror(errno))))",
                hint: "point LIVENESS_FILE at a writable path, or set it empty to do without")
        }
        defer { close(fd) }
        guard futimens(fd, nil) == 0 else {
            throw ContingencyError.failed(
                "cannot set the time of the liveness file \(path) (\(String(cString: strerror(errno))))")
        }
    }

    /// Touches the file now and every `interval` until the task is cancelled. A failed touch is logged (once
    /// until a touch works again) and never ends the loop it watches.
    public func run(logger: Logger) async {
        var failing = false
        while !Task.isCancelled {
            do {
                try await Blocking.run { try touch() }
                if failing { logger.info("The liveness file \(path) is touched again") }
                failing = false
            } catch {
                if !failing { logger.warning("\(error)") }
                failing = true
            }
            do { try await Task.sleep(for: interval) } catch { return }
        }
    }

    /// Runs `body` while touching the file; the touching stops when `body` ends, however it ends.
    public func whileRunning<T>(
        logger: Logger, isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> T
    ) async throws -> T {
        let toucher = Task { await run(logger: logger) }
        defer { toucher.cancel() }
        return try await body()
    }

    /// What `health-sidecar --liveness` found.
    public enum Check: Sendable, Equatable {
        /// Touched `age` seconds ago, within the limit.
        case alive(age: TimeInterval)
        /// Touched `age` seconds ago, past the limit.
        case stale(age: TimeInterval)
        /// No such file, or it cannot be read.
        case missing(String)

        public var isAlive: Bool { if case .alive = self { true } else { false } }
    }

    /// Whether the file at `path` was touched at most `maxAge` seconds before `now`. A time ahead of `now`
    /// (clock adjusted) counts as just touched.
    public static func check(path: String, maxAge: TimeInterval, now: Date = Date()) -> Check {
        var info = stat()
        guard lstat(path, &info) == 0 else { return .missing(String(cString: strerror(errno))) }
        #if canImport(Darwin)
            let time = info.st_mtimespec
        #else
            let time = info.st_mtim
        #endif
        let modified = Date(timeIntervalSince1970: TimeInterval(time.tv_sec) + TimeInterval(time.tv_nsec) / 1e9)
        let age = max(0, now.timeIntervalSince(modified))
        return age <= maxAge ? .alive(age: age) : .stale(age: age)
    }
}
