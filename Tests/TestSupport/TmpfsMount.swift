import Foundation

/// A small tmpfs mounted on a folder: a real filesystem that fills up (full-disk tests) or a real mount
/// point (a Docker volume stand-in). Needs root, as the test suite runs in CI.
public final class TmpfsMount: Sendable {
    public let path: String
    /// The folder made for the mount when none was given; removed after the unmount in `deinit`.
    private let folder: TemporaryDirectory?

    /// Mounts a tmpfs of `size` (`3m`, `16m`) on `path`, or on a new temporary folder when nil.
    public init(size: String, on path: String? = nil) async throws {
        folder = try path == nil ? TemporaryDirectory(prefix: "contingency-tmpfs") : nil
        self.path = path ?? folder!.path
        _ = try await ProcessRunner.run("mount", ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", self.path], requireSuccess: true)
    }

    /// Unmounts (lazily, so an open file cannot make it fail).
    public func unmount() {
        _ = try? ProcessRunner.runBlocking("umount", ["-l", path])
    }

    deinit { unmount() }
}
