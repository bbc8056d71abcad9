import Foundation

/// The fixture application (`deploy/compose/app/app.py`) run the way an operator's compose setup runs the
/// real one: started and stopped by shell commands (`app.sh start` / `app.sh stop`), which restore-job calls as
/// APP_START_COMMAND / APP_STOP_COMMAND. Its first start lets the kernel pick a free port (no other test can
/// take it between a pick and the bind) and records it; later starts listen on the same port, so that sidecars
/// probing it find it again after a restart. Its database connection (password included) is in a 0600 file the script reads: hooks do
/// not inherit the product's secrets.
public final class ManagedApplication: Sendable {
    public let folder: TemporaryDirectory
    /// The port of its first start (0 before it).
    public var port: Int {
        Int(((try? String(contentsOf: folder.appending("app.port"), encoding: .utf8)) ?? "0").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }
    public var script: String { folder.appending("app.sh").path }
    public var healthURL: String { "http://127.0.0.1:\(port)/healthz" }
    public var startCommand: String { "\(script) start" }
    public var stopCommand: String { "\(script) stop" }

    public init(for app: ApplicationFixture, requiredFile: String = "documents/2024/03/notes.txt") throws {
        folder = try TemporaryDirectory(prefix: "managed-app")
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("deploy/compose/app/app.py").path
        var settings = app.server.environment
        settings["PGDATABASE"] = app.database
        settings["FIXTURE_UPLOADS"] = app.uploadsDirectory.path
        settings["FIXTURE_REQUIRED_FILE"] = requiredFile
        settings["PG_BIN_DIR"] = app.server.binDir.path
        let exports = settings.sorted { $0.key < $1.key }.map { "export \($0.key)='\($0.value.replacingOccurrences(of: "'", with: "'\\''"))'" }
        let environmentFile = folder.appending("app.env")
        try Data((exports.joined(separator: "\n") + "\n").utf8).write(to: environmentFile)
        chmod(environmentFile.path, 0o600)
        let dir = folder.path
        // `setsid`: the app is a daemon of its own, not a child the job's guard would kill with the hook.
        let text = """
            #!/bin/sh
            set -e
            . '\(environmentFile.path)'
            case "$1" in
            start)
                if [ -f '\(dir)/app.pid' ] && kill -0 "$(cat '\(dir)/app.pid')" 2>/dev/null; then exit 0; fi
                : > '\(dir)/app.out'
                port=0; [ -f '\(dir)/app.port' ] && port="$(cat '\(dir)/app.port')"
                setsid python3 '\(fixture)' --port "$port" >>'\(dir)/app.out' 2>>'\(dir)/app.err' </dev/null &
                echo $! > '\(dir)/app.pid'
                i=0
                while ! grep -q 'listening on' '\(dir)/app.out'; do
                    i=$((i + 1)); [ $i -gt 200 ] && { echo 'the app did not start' >&2; exit 1; }
                    sleep 0.05
                done
                [ -f '\(dir)/app.port' ] || sed -n 's/.*listening on \\([0-9]*\\).*/\\1/p' '\(dir)/app.out' | head -1 > '\(dir)/app.port'
                echo "app started: pid $(cat '\(dir)/app.pid')" >> '\(dir)/events.log'
                ;;
            stop)
                if [ -f '\(dir)/app.pid' ]; then
                    pid="$(cat '\(dir)/app.pid')"
                    kill "$pid" 2>/dev/null || true
                    i=0
                    # A zombie (stopped, not yet reaped by init) counts as stopped.
                    while kill -0 "$pid" 2>/dev/null && [ "$(ps -o stat= -p "$pid" | cut -c1)" != Z ]; do
                        i=$((i + 1)); [ $i -gt 200 ] && kill -9 "$pid" 2>/dev/null || true
                        sleep 0.05
                    done
                    rm -f '\(dir)/app.pid'
                fi
                echo "app stopped" >> '\(dir)/events.log'
                ;;
            esac
            """
        try Data(text.utf8).write(to: URL(fileURLWithPath: script))
        chmod(script, 0o755)
    }

    /// Runs the script (`start` or `stop`) and requires it to succeed.
    public func control(_ action: String) async throws {
        _ = try await ProcessRunner.run("/bin/sh", [script, action], timeout: .seconds(30), requireSuccess: true)
    }

    /// The HTTP status of /healthz now, or nil when nothing answers.
    public func status() async -> Int? { await httpStatus(healthURL, maxTime: 3) }

    /// What the app script recorded: "app started: pid …", "app stopped".
    public func events() -> [String] {
        ((try? String(contentsOf: folder.appending("events.log"), encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Stops the app and removes its folder; for `defer`.
    public func tearDown() async {
        _ = try? await ProcessRunner.run("/bin/sh", [script, "stop"], timeout: .seconds(30))
        folder.remove()
    }
}
