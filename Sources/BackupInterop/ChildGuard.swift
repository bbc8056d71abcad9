import BackupCore
import Foundation
import Subprocess

#if canImport(System)
import System
#else
import SystemPackage
#endif

/// Starts every child process of a job through `contingency-guard` (Sources/contingency-guard/main.c), so
/// that no child outlives its job, however the job ends: a `kill -9` of backup-job leaves no pg_dump behind.
///
/// Why a separate program: `PR_SET_PDEATHSIG` is tied to the *thread* that spawned the child (Swift's
/// threads come and go, and a child would be killed when its spawning thread exits, not its job), and
/// `posix_spawn`, through which swift-subprocess starts children, cannot set it between fork and exec. The
/// guard is single-threaded: it sets the flag on its own child, watches the job through a pidfd, passes
/// signals on, and exits as the program did. Arguments and the environment reach the program unchanged.
public enum ChildGuard {
    /// The guard's file name, installed beside the executables (`/usr/local/bin` in the image).
    public static let programName = "contingency-guard"

    /// The guard beside this process's executable, where `swift build` and the image put it.
    public static let path: String = {
        let executable =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments.first ?? ""
        return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent(programName).path
    }()

    /// `program` and its arguments as the guard runs them: the guard is the process the caller starts (its
    /// pid is the one to signal), the program its only child. Throws when the guard is not installed.
    public static func wrap(_ program: String, _ arguments: [String]) throws -> (Executable, Arguments) {
        guard access(path, X_OK) == 0 else {
            throw ContingencyError.failed(
                "cannot start \(program): \(path) is missing or not executable",
                hint: "install \(programName) beside the job's executable (the image and `swift build` put it "
                    + "there); it ends the job's child processes with the job")
        }
        return (.path(FilePath(path)), Arguments([String(getpid()), program] + arguments))
    }
}
