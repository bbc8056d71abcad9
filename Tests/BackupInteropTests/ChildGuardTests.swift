import BackupCore
import Foundation
import TestSupport
import Testing

@testable import BackupInterop

#if canImport(Glibc)
import Glibc
#endif

/// `contingency-guard`, run directly: it is invisible to its job (output, exit status, signals pass through)
/// until the job dies, and then its program dies too.
@Suite("The child guard")
struct ChildGuardTests {
    /// The guard's arguments to run `script` with /bin/sh for this test process, its job.
    func guarded(_ script: String) -> [String] { [String(getpid()), "/bin/sh", "-c", script] }

    @Test("output, exit status and a death by signal pass through unchanged")
    func passesThrough() async throws {
        let exited = try await ProcessRunner.run(ChildGuard.path, guarded("echo out; echo err >&2; exit 3"))
        #expect(exited.status == 3 && exited.stdout == "out\n" && exited.stderr == "err\n", "\(exited)")
        let signalled = try await ProcessRunner.run(ChildGuard.path, guarded("kill -TERM $$"))
        #expect(signalled.terminationSignal == SIGTERM, "\(signalled)")
        let missing = try await ProcessRunner.run(ChildGuard.path, [String(getpid()), "/nonexistent/pg_dump"])
        #expect(missing.status == 127 && missing.stderr.contains("cannot run /nonexistent/pg_dump"), "\(missing)")
        // A job that is not its parent (here: the test's own parent) is taken as gone: nothing is started.
        let orphan = try await ProcessRunner.run(ChildGuard.path, [String(getppid()), "/bin/sh", "-c", "echo started"])
        #expect(orphan.status == 125 && orphan.stdout.isEmpty && orphan.stderr.contains("is gone"), "\(orphan)")
    }

    @Test(
        "a job that is its container's init (pid 1, in a new pid namespace) runs its programs",
        .enabled(if: geteuid() == 0, "unshare --pid needs root"))
    func jobAsInit() async throws {
        let result = try await ProcessRunner.run(
            "unshare",
            [
                "--pid", "--fork", "--mount-proc", "/bin/sh", "-c", #""$0" $$ /bin/sh -c 'echo ran; exit 4'"#,
                ChildGuard.path,
            ])
        #expect(result.status == 4 && result.stdout == "ran\n", "\(result)")
    }

    @Test("started by a job that ignores SIGCHLD (inherited across exec), the guard still ends with its program")
    func sigchldIgnoredByItsJob() async throws {
        // A job with SIGCHLD ignored: the guard inherits the disposition, and its program's exit must still end it.
        let job = """
            import os, signal, subprocess, sys, time
            signal.signal(signal.SIGCHLD, signal.SIG_IGN)
            guard = subprocess.Popen([sys.argv[1], str(os.getpid()), '/bin/sh', '-c', 'exit 5'])
            for _ in range(100):
                try:
                    state = open('/proc/%d/stat' % guard.pid).read().split(')')[-1].split()[0]
                except FileNotFoundError:
                    state = 'gone'
                if state in ('gone', 'Z'):
                    print('ended'); sys.exit(0)
                time.sleep(0.1)
            os.kill(guard.pid, signal.SIGKILL)
            print('still running 10 s after its program exited'); sys.exit(1)
            """
        let result = try await ProcessRunner.run("python3", ["-c", job, ChildGuard.path], timeout: .seconds(60))
        #expect(result.status == 0 && result.stdout == "ended\n", "\(result)")
    }

    @Test("started with its standard input, output or error closed, the guard runs its program to its end")
    func closedStandardStreams() async throws {
        for closing in ["<&-", ">&- 2>/dev/null", "2>&-"] {
            // A shell plays the job and starts the guard with one standard stream closed: the guard's own
            // descriptors (its watch on the job) must not take that number and be replaced by /dev/null.
            let result = try await ProcessRunner.run(
                "/bin/sh",
                ["-c", "\"$0\" $$ /bin/sh -c 'sleep 0.2; echo ran >&3' 3>&1 \(closing); echo \"status $?\"", ChildGuard.path])
            #expect(result.stdout == "ran\nstatus 0\n", "\(closing): \(result)")
        }
    }

    @Test("SIGTERM to the guard reaches the program, which ends as it chooses")
    func forwardsSignals() async throws {
        let guardProcess = try ProcessRunner.launch(
            ChildGuard.path, guarded("trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.05; done"))
        try await eventually("the program to start") { guardProcess.stdoutSoFar.contains("ready") }
        guardProcess.kill(SIGTERM)
        let result = try await guardProcess.waitForExit(timeout: .seconds(30))
        #expect(result.status == 7 && result.stdout.contains("got TERM"), "\(result)")
    }

    @Test("a job killed with SIGKILL takes the program and what it started in the background with it")
    func endsWithItsJob() async throws {
        // A shell plays the job: it starts the guard and waits.
        let job = try ProcessRunner.launch(
            "/bin/sh", ["-c", "\"$0\" $$ /bin/sh -c 'sleep 3600 & sleep 3600' & wait", ChildGuard.path])
        try await eventually("the program's two sleeps to run") {
            ProcessTable.descendants(of: job.pid).filter { $0.name == "sleep" }.count == 2
        }
        let below = ProcessTable.descendants(of: job.pid)
        job.kill(SIGKILL)
        _ = try await job.waitForExit(timeout: .seconds(30))
        try await eventually("everything below the killed job to end: \(below)") {
            below.allSatisfy { !ProcessTable.isRunning($0) }
        }
    }

    @Test("started from a thread that exits at once, the program runs to its end (not PR_SET_PDEATHSIG's thread death)")
    func outlivesItsSpawningThread() async throws {
        let launched = LaunchedBox()
        let thread = Thread { [guarded] in
            launched.set(Result { try ProcessRunner.launch(ChildGuard.path, guarded("sleep 0.5; echo finished")) })
        }
        thread.start()
        try await eventually("the spawning thread to have started the guard and ended") {
            launched.value != nil && thread.isFinished
        }
        let result = try await launched.value!.get().waitForExit(timeout: .seconds(30))
        #expect(result.succeeded && result.stdout == "finished\n", "\(result)")
    }
}

/// The process a short-lived thread launched.
private final class LaunchedBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Result<LaunchedProcess, any Error>?
    func set(_ result: Result<LaunchedProcess, any Error>) { lock.withLock { stored = result } }
    var value: Result<LaunchedProcess, any Error>? { lock.withLock { stored } }
}
