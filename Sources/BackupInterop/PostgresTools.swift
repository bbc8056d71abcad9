import BackupCore
import Foundation
import Subprocess

/// Runs PostgreSQL's client programs (pg_dump, pg_restore) as child processes. Connection details travel in
/// their environment (`PGPASSWORD`, …), never on the command line, where `ps` would show them. Each child runs
/// under `ChildGuard`, so it ends with the job, even one killed with SIGKILL.
public struct PostgresTools: Sendable {
    /// The folder holding the programs, or nil to find them on PATH.
    public let binDirectory: String?

    /// Uses `configured` when given; otherwise the newest `/usr/lib/postgresql/<major>/bin` that has pg_dump
    /// (Debian's layout, which avoids the version-guessing `pg_wrapper` in /usr/bin), else PATH.
    public init(binDirectory configured: String?) {
        if let configured {
            binDirectory = configured
            return
        }
        let root = "/usr/lib/postgresql"
        let majors = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap { Double($0) }
            .sorted(by: >)
        binDirectory = majors.lazy
            .map { "\(root)/\($0.truncatingRemainder(dividingBy: 1) == 0 ? String(Int($0)) : String($0))/bin" }
            .first { FileManager.default.isExecutableFile(atPath: "\($0)/pg_dump") }
    }

    /// What a finished child printed and how it ended.
    public struct Outcome: Sendable {
        public let status: TerminationStatus
        public let standardError: String
        public var succeeded: Bool { status.isSuccess }
    }

    /// The program's version from `--version`.
    public func version(of program: String) async throws -> PostgresVersion {
        let result: ExecutionResult<Void, StringOutput<UTF8>, DiscardedOutput>
        do {
            let (executable, arguments) = try ChildGuard.wrap(path(of: program), ["--version"])
            result = try await Subprocess.run(executable, arguments: arguments, output: .string(limit: 4096))
        } catch let error as ContingencyError {
            throw error
        } catch {
            throw ContingencyError.failed(
                "cannot run \(path(of: program)) (\(error))",
                hint: "install PostgreSQL's client programs (Debian: postgresql-client) or set PG_BIN_DIR")
        }
        let line = result.standardOutput
        guard result.terminationStatus.isSuccess, let version = PostgresVersion.parse(toolVersionLine: line) else {
            throw ContingencyError.failed("\(path(of: program)) --version printed no version: \(line)")
        }
        return version
    }

    /// Where a child's standard input comes from and its standard output goes.
    public enum Stream {
        case none
        /// Standard output is written into this sink, as it comes.
        case output(any ByteSink)
        /// Standard input is read from this source; a child that stops reading early ends the feeding.
        case input(any ByteSource)
    }

    /// Runs a program to completion. On task cancellation the child gets SIGTERM, then SIGKILL after 5 s (its
    /// guard passes the SIGTERM on, and takes the program with it when killed).
    public func run(
        _ program: String, _ arguments: [String], environment: [String: String] = [:], stream: Stream = .none
    ) async throws -> Outcome {
        var options = PlatformOptions()
        options.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: .seconds(5))]
        // The children need libpq's variables only: the product's own secrets are not passed on.
        let updates = Self.environmentUpdates(environment, withholding: Self.withheld)
        let status: TerminationStatus
        let standardError: String
        do {
            let (executable, arguments) = try ChildGuard.wrap(path(of: program), arguments)
            let environment = Environment.inherit.updating(updates)
            switch stream {
            case .none:
                let result = try await Subprocess.run(
                    executable, arguments: arguments, environment: environment, platformOptions: options,
                    output: .discarded, error: .string(limit: 4 << 20))
                (status, standardError) = (result.terminationStatus, result.standardError)
            case .output(let sink):
                let result = try await Subprocess.run(
                    executable, arguments: arguments, environment: environment, platformOptions: options,
                    input: .none, output: .sequence, error: .string(limit: 4 << 20)
                ) { execution in
                    for try await buffer in execution.standardOutput {
                        try buffer.withUnsafeBytes { try sink.write($0) }
                    }
                }
                (status, standardError) = (result.terminationStatus, result.standardError)
            case .input(let source):
                let result = try await Subprocess.run(
                    executable, arguments: arguments, environment: environment, platformOptions: options,
                    input: .inputWriter, output: .discarded, error: .string(limit: 4 << 20)
                ) { execution in
                    var chunk = [UInt8](repeating: 0, count: 1 << 20)
                    while true {
                        let count = try chunk.withUnsafeMutableBytes { try source.read(into: $0) }
                        if count == 0 { break }
                        // A child that exits early (an error) closes its input: its status says why.
                        do { _ = try await execution.standardInputWriter.write(Array(chunk[0..<count])) } catch { break }
                    }
                    try? await execution.standardInputWriter.finish()
                }
                (status, standardError) = (result.terminationStatus, result.standardError)
            }
        } catch let error as ContingencyError {
            throw error
        } catch {
            if Task.isCancelled { throw ContingencyError.cancelled() }
            throw ContingencyError.failed("running \(path(of: program)): \(error)")
        }
        // A program that finished its work is not undone by a signal that came meanwhile: the caller decides.
        if Task.isCancelled && !status.isSuccess { throw ContingencyError.cancelled() }
        return Outcome(status: status, standardError: standardError.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// `pg_dump` in custom format, uncompressed (the archive compresses everything once), into `sink`.
    /// With `snapshot`, the dump reads the database as that exported snapshot sees it.
    public func dump(into sink: any ByteSink, connection: ConnectionParameters, snapshot: String? = nil) async throws -> Outcome {
        try await run("pg_dump", Self.dumpArguments(snapshot: snapshot), environment: connection.childEnvironment, stream: .output(sink))
    }

    /// `pg_dump` in custom format, uncompressed, into the file at `path`: pg_dump can then seek back and record
    /// in its table of contents where each table's data starts, which `pg_restore --jobs` needs to go straight
    /// to it.
    public func dump(toFile path: String, connection: ConnectionParameters, snapshot: String? = nil) async throws -> Outcome {
        try await run("pg_dump", Self.dumpArguments(snapshot: snapshot) + ["--file=\(path)"], environment: connection.childEnvironment)
    }

    private static func dumpArguments(snapshot: String?) -> [String] {
        ["--format=custom", "--compress=0", "--no-password"] + (snapshot.map { ["--snapshot=\($0)"] } ?? [])
    }

    /// The cluster's roles and their memberships as SQL (`pg_dumpall --roles-only`), without password hashes
    /// unless `passwords` (reading those needs a superuser; without them any role that can log in can dump).
    public func dumpRoles(into sink: any ByteSink, connection: ConnectionParameters, database: String, passwords: Bool) async throws -> Outcome {
        try await run(
            "pg_dumpall", ["--roles-only", "--no-password", "--database=\(database)"] + (passwords ? [] : ["--no-role-passwords"]),
            environment: connection.childEnvironment, stream: .output(sink))
    }

    /// A custom-format dump for pg_restore: a plain file (which pg_restore can seek in), or a stream on its
    /// standard input.
    public enum DumpInput {
        case file(String)
        case stream(any ByteSource)

        var argument: [String] {
            if case .file(let path) = self { return [path] }
            return []
        }

        var stream: Stream {
            if case .stream(let source) = self { return .input(source) }
            return .none
        }
    }

    /// `pg_restore --list`: reads the whole table of contents; fails on a truncated or foreign dump.
    public func list(_ dump: DumpInput) async throws -> Outcome {
        try await run("pg_restore", ["--list"] + dump.argument, stream: dump.stream)
    }

    /// How `restore` may spread its work.
    public enum RestoreMode: Sendable {
        /// One transaction, so that a failure leaves the database as it was.
        case singleTransaction
        /// Up to this many parallel jobs (`pg_restore --jobs`: tables loaded and indexes built at once), for a
        /// database nobody uses yet that the caller drops if the restore fails. It needs a dump `.file`
        /// (pg_restore seeks in it); a `.stream` is restored by one job, still outside a transaction.
        case parallel(jobs: Int)
    }

    /// `pg_restore --clean --if-exists` into the connection's database, in one transaction or in parallel
    /// (`mode`). Its session carries `applicationName`, so it can be watched and cancelled (the dump's own
    /// preamble sets `lock_timeout = 0`, so a session setting cannot bound its lock waits).
    /// `ownership: false` restores with `--no-owner --no-acl` (a drill's scratch server may lack the roles).
    /// `settings` are set in each of its sessions (through `PGOPTIONS`, after any the operator gave).
    /// `list` restores only the entries it names (`--use-list`, one dump ID per line), in its order.
    public func restore(
        _ dump: DumpInput, connection: ConnectionParameters, database: String, applicationName: String,
        ownership: Bool = true, mode: RestoreMode = .singleTransaction, settings: [String: String] = [:],
        list: String? = nil
    ) async throws -> Outcome {
        var environment = connection.childEnvironment.filter { $0.key != "PGDATABASE" }
        environment["PGAPPNAME"] = applicationName
        if !settings.isEmpty {
            let given = environment["PGOPTIONS"] ?? ProcessInfo.processInfo.environment["PGOPTIONS"]
            environment["PGOPTIONS"] = Self.sessionOptions(settings, after: given)
        }
        var spread = ["--single-transaction"]
        if case .parallel(let jobs) = mode {
            // --jobs cannot read standard input, and cannot combine with --single-transaction.
            if case .file = dump { spread = jobs > 1 ? ["--jobs=\(jobs)"] : [] } else { spread = [] }
        }
        return try await run(
            "pg_restore",
            ["--clean", "--if-exists"] + spread + ["--exit-on-error", "--no-password", "--dbname=\(database)"]
                + (ownership ? [] : ["--no-owner", "--no-acl"]) + (list.map { ["--use-list=\($0)"] } ?? []) + dump.argument,
            environment: environment, stream: dump.stream)
    }

    /// `-c name=value` for each setting, appended to `given` (libpq's PGOPTIONS syntax: spaces separate, a
    /// backslash escapes).
    static func sessionOptions(_ settings: [String: String], after given: String?) -> String {
        let escape = { (text: String) in text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: " ", with: "\\ ") }
        let added = settings.sorted { $0.key < $1.key }.map { "-c \(escape($0.key))=\(escape($0.value))" }
        return ((given.map { [$0] } ?? []) + added).filter { !$0.isEmpty }.joined(separator: " ")
    }

    /// Variables of this product that hold secrets (or name them) and that no child needs.
    static let withheld = [
        "DATABASE_URL", "DATABASE_URL_FILE", "DATABASE_PASSWORD", "DATABASE_PASSWORD_FILE", "DRILL_DATABASE_URL",
        "DRILL_DATABASE_URL_FILE", "AGE_PASSPHRASE", "AGE_PASSPHRASE_FILE", "AGE_IDENTITY", "AGE_IDENTITY_FILE",
        "PGPASSWORD_FILE", "API_ADMIN_TOKEN", "API_ADMIN_TOKEN_FILE", "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY_FILE",
        "AWS_SESSION_TOKEN", "BACKUP_SIGNING_KEY", "BACKUP_SIGNING_KEY_FILE", "BACKUP_WEBHOOK_URL",
        "BACKUP_WEBHOOK_URL_FILE", "ROLLBACK_WEBHOOK_URL", "ROLLBACK_WEBHOOK_URL_FILE", "BACKUP_PING_URL",
        "BACKUP_PING_URL_FILE", "PUSHGATEWAY_URL", "PUSHGATEWAY_URL_FILE",
    ]

    /// This process's environment for a child: `withholding` removed, `variables` set.
    static func environmentUpdates(_ variables: [String: String], withholding: [String]) -> [Environment.Key: String?] {
        var updates: [Environment.Key: String?] = [:]
        for name in withholding { updates[Environment.Key(rawValue: name)!] = .some(nil) }
        for (key, value) in variables { updates[Environment.Key(rawValue: key)!] = value }
        return updates
    }

    /// The program's path in `binDirectory`, or its bare name, which the guard looks up on PATH.
    public func path(of program: String) -> String { binDirectory.map { "\($0)/\(program)" } ?? program }
}
