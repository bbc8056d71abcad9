import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A throwaway PostgreSQL 15 server on 127.0.0.1, for integration tests.
///
/// `initdb` runs once per test process (into a template with scram-sha-256 authentication and
/// a superuser `postgres` with a random password); each server gets a copy of it in its own
/// directory and its own free port. Use `PostgresServer.with { server in … }`, which always stops
/// the server, or pair `start()` with `stop()`. Servers a test forgets are shut down when the
/// object is deallocated or, at the latest, when the test process exits.
///
/// When the tests run as root, the server binaries run as the `postgres` system user (initdb
/// and postgres refuse root); psql and the code under test connect over TCP as any user.
public final class PostgresServer: Sendable {
    /// Always "127.0.0.1": the server listens on TCP there (and on a Unix socket in its directory).
    public let host = "127.0.0.1"
    /// The TCP port.
    public let port: Int
    /// The superuser's name, "postgres".
    public let user = "postgres"
    /// The superuser's password (random per test process).
    public let password: String
    /// The directory with initdb, pg_ctl, postgres, pg_dump, pg_restore and psql.
    public let binDir: URL
    /// The cluster's data directory (PGDATA).
    public let dataDirectory: URL
    /// The server's log file (outside the data directory).
    public let logFile: URL
    /// The directory holding the data directory, the log and the Unix socket.
    public let serverDirectory: URL

    private enum State { case running, killed, stopped }
    private let state = Mutex(State.running)
    private let directory: TemporaryDirectory

    /// How many times `start()` tries again with another port when the chosen one was taken.
    private static let portAttempts = 5

    private init(directory: TemporaryDirectory, port: Int, password: String) {
        self.directory = directory
        self.port = port
        self.password = password
        binDir = PostgresTemplate.binDir
        serverDirectory = directory.url
        dataDirectory = directory.appending("data", isDirectory: true)
        logFile = directory.appending("server.log")
    }

    deinit {
        let wasLive = state.withLock { $0 != .stopped }
        if wasLive {
            PostgresTemplate.shutDownImmediately(dataDirectory: dataDirectory)
            PostgresTemplate.unregister(dataDirectory: dataDirectory)
        }
        // `directory` removes itself when it is deallocated.
    }

    // MARK: - Starting and stopping

    /// Starts a new server from a copy of the per-process template cluster (running initdb first
    /// if this is the first server of the process; concurrent callers share that one run), and
    /// returns once it accepts connections.
    public static func start() async throws -> PostgresServer {
        let cluster = try await PostgresTemplate.shared()
        let directory = try TemporaryDirectory(prefix: "server", in: cluster.root.url)
        try PostgresTemplate.chownToPostgres(directory.url)
        let data = directory.appending("data", isDirectory: true)
        // cp -a keeps the postgres ownership and the 0700 mode the server insists on.
        _ = try await ProcessRunner.run(
            "/bin/cp", ["-a", cluster.dataDirectory.path, data.path], timeout: .seconds(120), requireSuccess: true)

        var lastFailure = ""
        for _ in 0..<portAttempts {
            let server = PostgresServer(directory: directory, port: try FreePort.pick(), password: cluster.password)
            PostgresTemplate.register(dataDirectory: data)
            let result = try await server.pgCtlStart()
            if result.succeeded {
                return server
            }
            // pg_ctl may have given up on a postmaster that is still starting: make sure it is gone.
            PostgresTemplate.shutDownImmediately(dataDirectory: data)
            server.state.withLock { $0 = .stopped }
            PostgresTemplate.unregister(dataDirectory: data)
            let log = server.logContents
            lastFailure = "\(result)\n--- server log ---\n\(log)"
            guard log.contains("could not bind") || log.contains("Address already in use") else { break }
        }
        throw TestSupportError("pg_ctl start failed: \(lastFailure)")
    }

    /// Starts a server, runs `body` with it and stops the server whether `body` returns or throws
    /// (an error from `body` is rethrown; a failure to stop is thrown only when `body` succeeded).
    public static func with<T>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresServer) async throws -> T
    ) async throws -> T {
        let server = try await start()
        let result: T
        do {
            result = try await body(server)
        } catch {
            try? await server.stop()
            throw error
        }
        try await server.stop()
        return result
    }

    /// Shuts the server down (`pg_ctl stop -m fast`, falling back to immediate) and deletes its
    /// directory. Idempotent; also cleans up after `kill()`. Runs to completion even if the
    /// calling task is cancelled.
    public func stop() async throws {
        let previous = state.withLock { value -> State in
            defer { value = .stopped }
            return value
        }
        guard previous != .stopped else { return }
        let directory = self.directory
        let dataDirectory = self.dataDirectory
        let failure: String? = await Task.detached {
            var failure: String?
            if previous == .running {
                let fast = try? await PostgresTemplate.runAsPostgres(
                    "pg_ctl", ["stop", "-D", dataDirectory.path, "-m", "fast", "-w", "-t", "60"],
                    workingDirectory: directory.url)
                // A server that is already gone (killed from outside) is not a failure to stop.
                if fast?.succeeded != true && PostgresTemplate.isPostmasterAlive(dataDirectory: dataDirectory) {
                    failure = fast.map { "\($0)" } ?? "pg_ctl could not be run"
                    PostgresTemplate.shutDownImmediately(dataDirectory: dataDirectory)
                }
            } else {
                // Killed earlier; make sure nothing of it survives (a restart() may have failed midway).
                PostgresTemplate.shutDownImmediately(dataDirectory: dataDirectory)
            }
            PostgresTemplate.unregister(dataDirectory: dataDirectory)
            directory.remove()
            return failure
        }.value
        if let failure {
            throw TestSupportError("pg_ctl stop -m fast failed (the server was then killed): \(failure)")
        }
    }

    /// Makes the server die abruptly (`pg_ctl stop -m immediate`, as after a crash: no checkpoint),
    /// keeping its directory, for "the database goes away" tests. Idempotent; `stop()` still
    /// cleans up afterwards, and `restart()` brings the server back on the same port.
    public func kill() async {
        let wasRunning = state.withLock { value -> Bool in
            guard value == .running else { return false }
            value = .killed
            return true
        }
        guard wasRunning else { return }
        let directory = self.directory
        let dataDirectory = self.dataDirectory
        await Task.detached {
            let result = try? await PostgresTemplate.runAsPostgres(
                "pg_ctl", ["stop", "-D", dataDirectory.path, "-m", "immediate", "-w", "-t", "30"],
                workingDirectory: directory.url)
            if result?.succeeded != true {
                PostgresTemplate.shutDownImmediately(dataDirectory: dataDirectory, wait: .seconds(10))
            }
        }.value
    }

    /// Starts a server again after `kill()`, on the same port and data directory (it performs
    /// crash recovery). Does nothing if the server is running; throws if it was stopped.
    public func restart() async throws {
        let current = state.withLock { $0 }
        switch current {
        case .running: return
        case .stopped: throw TestSupportError("restart(): the server was stopped and its directory deleted")
        case .killed: break
        }
        let result = try await pgCtlStart()
        guard result.succeeded else {
            throw TestSupportError("pg_ctl start (restart) failed: \(result)\n--- server log ---\n\(logContents)")
        }
        state.withLock { $0 = .running }
    }

    /// Whether the server is running (not stopped or killed through this object).
    public var isRunning: Bool { state.withLock { $0 == .running } }

    /// The server log so far (empty if unreadable), for failure messages.
    public var logContents: String {
        (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
    }

    private func pgCtlStart() async throws -> ProcessResult {
        let options = [
            "-c listen_addresses=127.0.0.1",
            "-c port=\(port)",
            "-c unix_socket_directories='\(serverDirectory.path)'",
            "-c fsync=off",
            "-c full_page_writes=off",
            "-c max_connections=50",
            "-c shared_buffers=32MB",
        ].joined(separator: " ")
        return try await PostgresTemplate.runAsPostgres(
            "pg_ctl",
            ["start", "-D", dataDirectory.path, "-l", logFile.path, "-w", "-t", "60", "-o", options],
            workingDirectory: serverDirectory)
    }

    // MARK: - Connecting

    /// PGHOST, PGPORT, PGUSER and PGPASSWORD for this server, to pass to child processes (libpq
    /// reads them). Add PGDATABASE as needed.
    public var environment: [String: String] {
        ["PGHOST": host, "PGPORT": String(port), "PGUSER": user, "PGPASSWORD": password]
    }

    /// A libpq connection URI, e.g. for a DATABASE_URL in a test's .env file. The password is hex,
    /// so it needs no escaping.
    public func connectionURL(database: String = "postgres") -> String {
        let name = database.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? database
        return "postgresql://\(user):\(password)@\(host):\(port)/\(name)"
    }

    /// The environment for psql: nothing inherited (no stray PG* variables), this server's
    /// connection settings, C.UTF-8.
    private func clientEnvironment(database: String) -> [String: String] {
        environment.merging([
            "PATH": "\(binDir.path):/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PGDATABASE": database,
            "PGCONNECT_TIMEOUT": "10",
            "PGAPPNAME": "TestSupport",
        ]) { _, new in new }
    }

    /// Runs `sql` with `psql -X -v ON_ERROR_STOP=1 -At -c sql` over TCP (the password travels in
    /// the environment) and returns the output without its final newline: one row per line,
    /// columns separated by "|". Several statements run in one transaction and only the last
    /// one's rows are printed. Throws `ProcessError.failed` (with psql's stderr) on an error.
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres", timeout: Duration = .seconds(60)) async throws -> String {
        let result = try await ProcessRunner.run(
            binDir.appendingPathComponent("psql").path,
            ["-X", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
            environment: clientEnvironment(database: database), inheritEnvironment: false,
            timeout: timeout, requireSuccess: true)
        return Self.chompNewline(result.stdout)
    }

    /// Runs a multi-statement SQL script fed to `psql -f -` on standard input (no size limit, each
    /// statement separately, or all in one transaction when `singleTransaction`), stopping at the
    /// first error, which is thrown. Returns everything printed, as `psql(_:database:)` does.
    @discardableResult
    public func runScript(
        _ sql: String, database: String = "postgres", singleTransaction: Bool = false, timeout: Duration = .seconds(120)
    ) async throws -> String {
        let result = try await ProcessRunner.run(
            binDir.appendingPathComponent("psql").path,
            ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-At"] + (singleTransaction ? ["--single-transaction"] : []) + ["-f", "-"],
            environment: clientEnvironment(database: database), inheritEnvironment: false,
            stdin: Data(sql.utf8), timeout: timeout, requireSuccess: true)
        return Self.chompNewline(result.stdout)
    }

    /// Runs a query (fed on standard input, so it may be long) and returns its rows as arrays of
    /// column texts; NULL becomes "". Rows are NUL-terminated and columns separated by U+001F, so
    /// values may contain newlines and "|".
    public func query(_ sql: String, database: String = "postgres", timeout: Duration = .seconds(120)) async throws -> [[String]] {
        let result = try await ProcessRunner.run(
            binDir.appendingPathComponent("psql").path,
            ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "--field-separator=\u{1F}", "--record-separator-zero", "-f", "-"],
            environment: clientEnvironment(database: database), inheritEnvironment: false,
            stdin: Data(sql.utf8), timeout: timeout, requireSuccess: true)
        // Each record, the last one included, ends with a NUL.
        var records = result.stdout.split(separator: "\0", omittingEmptySubsequences: false)
        if records.last?.isEmpty == true { records.removeLast() }
        return records.map { record in
            record.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
        }
    }

    // MARK: - Databases

    /// Creates database `name` (owned by postgres).
    public func createDatabase(_ name: String) async throws {
        try await psql("CREATE DATABASE \(Self.quoteIdentifier(name))")
    }

    /// Drops database `name` if it exists, disconnecting its sessions first.
    public func dropDatabase(_ name: String) async throws {
        try await psql("DROP DATABASE IF EXISTS \(Self.quoteIdentifier(name)) WITH (FORCE)")
    }

    /// Whether database `name` exists.
    public func databaseExists(_ name: String) async throws -> Bool {
        try await psql("SELECT count(*) FROM pg_database WHERE datname = \(Self.quoteLiteral(name))") == "1"
    }

    // MARK: - Snapshots and sample data

    /// Captures the user-visible content of `database` (all schemas but pg_catalog,
    /// information_schema and temporary/TOAST ones): each table's row count and an md5 over its
    /// rows sorted by their text form, each sequence's last_value, and the views, so that a
    /// restored database can be compared with the original (`#expect(restored == original)`).
    public func snapshot(database: String) async throws -> DatabaseSnapshot {
        let userSchemas = """
            n.nspname NOT IN ('pg_catalog', 'information_schema')
            AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
            """
        let relations = try await query("""
            SELECT c.relkind::text, n.nspname, c.relname
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'v', 'm') AND \(userSchemas)
            ORDER BY 2, 3;
            """, database: database)

        var tables: [String: DatabaseSnapshot.Table] = [:]
        var views: [String] = []
        var tableQueries: [String] = []
        for row in relations {
            let (kind, schema, name) = (row[0], row[1], row[2])
            let qualified = "\(schema).\(name)"
            if kind == "v" || kind == "m" {
                views.append(qualified)
            } else {
                tableQueries.append("""
                    SELECT \(Self.quoteLiteral(qualified)), count(*)::text,
                           md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))
                    FROM \(Self.quoteIdentifier(schema)).\(Self.quoteIdentifier(name)) t
                    """)
            }
        }
        if !tableQueries.isEmpty {
            for row in try await query(tableQueries.joined(separator: "\nUNION ALL\n") + ";", database: database) {
                tables[row[0]] = DatabaseSnapshot.Table(rowCount: Int(row[1]) ?? -1, md5: row[2])
            }
        }

        var sequences: [String: Int64?] = [:]
        let sequenceRows = try await query("""
            SELECT schemaname || '.' || sequencename, coalesce(last_value::text, 'null')
            FROM pg_sequences n WHERE \(userSchemas.replacingOccurrences(of: "n.nspname", with: "n.schemaname"));
            """, database: database)
        for row in sequenceRows {
            sequences[row[0]] = Int64(row[1])
        }
        return DatabaseSnapshot(tables: tables, sequences: sequences, views: views.sorted())
    }

    /// Creates `database` if needed and fills it with a small, realistic, deterministic data set
    /// in one transaction: tables `users` (40 rows), `posts` (90, jsonb and NULLs), `attachments`
    /// (45, bytea of pseudo-random bytes including one ~64 KB value, an empty one and NULLs),
    /// `invoices` (25, numbered by the standalone sequence `invoice_number_seq`), `audit.events`
    /// (5, in a second schema), a view `published_posts`, foreign keys and an index. Text
    /// includes non-ASCII letters, an emoji, quotes, tabs, newlines and backslashes.
    public func seedSampleData(database: String) async throws {
        if try await !databaseExists(database) {
            try await createDatabase(database)
        }
        try await runScript(Self.sampleDataSQL, database: database, singleTransaction: true)
    }

    static let sampleDataSQL = """
        CREATE TABLE users (
            id serial PRIMARY KEY,
            email text NOT NULL UNIQUE,
            name text,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE posts (
            id serial PRIMARY KEY,
            user_id integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            title text NOT NULL,
            body text,
            metadata jsonb,
            published boolean NOT NULL DEFAULT false
        );
        CREATE INDEX posts_user_id_idx ON posts (user_id);
        CREATE TABLE attachments (
            id serial PRIMARY KEY,
            post_id integer NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
            filename text NOT NULL,
            content bytea
        );
        CREATE SEQUENCE invoice_number_seq START WITH 1000;
        CREATE TABLE invoices (
            number bigint PRIMARY KEY DEFAULT nextval('invoice_number_seq'),
            user_id integer REFERENCES users (id),
            amount numeric(10, 2) NOT NULL,
            issued_on date NOT NULL
        );
        CREATE SCHEMA audit;
        CREATE TABLE audit.events (
            id bigserial PRIMARY KEY,
            happened_at timestamptz NOT NULL,
            kind text NOT NULL,
            payload jsonb
        );
        CREATE VIEW published_posts AS
            SELECT p.id, p.title, u.email AS author_email
            FROM posts p JOIN users u ON u.id = p.user_id
            WHERE p.published;

        INSERT INTO users (email, name, created_at)
        SELECT 'user' || i || '@example.com',
               CASE
                   WHEN i % 7 = 0 THEN NULL
                   WHEN i = 13 THEN E'Multi\\nline\\tname with \\\\ backslash and ''quotes'''
                   ELSE (ARRAY['Zoë Ångström', 'José Müller', '李小龙', 'Ωμέγα Δέλτα', 'O''Brien',
                               'Émilie 🎉', 'Nguyễn Văn An', 'Иван Петров'])[1 + i % 8] || ' ' || i
               END,
               timestamptz '2024-01-01 08:00:00+00' + i * interval '1 day 3 hours 7 minutes'
        FROM generate_series(1, 40) AS i;

        INSERT INTO posts (user_id, title, body, metadata, published)
        SELECT 1 + (i * 7) % 40,
               'Post #' || i || CASE WHEN i % 5 = 0 THEN ' — über café' ELSE '' END,
               CASE WHEN i % 9 = 0 THEN NULL
                    ELSE repeat('Lorem ipsum dolor sit amet, ' || i || '. ', 1 + i % 20) END,
               CASE WHEN i % 4 = 0 THEN NULL
                    ELSE jsonb_build_object(
                        'tags', jsonb_build_array('t' || i % 3, 'ü' || i % 5),
                        'views', i * 13,
                        'score', round(i * 0.37, 2),
                        'nested', jsonb_build_object('even', i % 2 = 0, 'missing', NULL)) END,
               i % 3 <> 0
        FROM generate_series(1, 90) AS i;

        INSERT INTO attachments (post_id, filename, content)
        SELECT 1 + (i * 11) % 90,
               'file ' || i || CASE WHEN i % 6 = 0 THEN ' ñandú.png' ELSE '.bin' END,
               CASE WHEN i % 10 = 0 THEN NULL
                    WHEN i = 2 THEN ''::bytea
                    ELSE (SELECT decode(string_agg(md5(i || ':' || j), '' ORDER BY j), 'hex')
                          FROM generate_series(1, CASE WHEN i = 1 THEN 4096 ELSE 1 + (i * 37) % 64 END) AS j)
               END
        FROM generate_series(1, 45) AS i;

        INSERT INTO invoices (user_id, amount, issued_on)
        SELECT 1 + i % 40, round(i * 19.99, 2), date '2024-02-01' + i
        FROM generate_series(1, 25) AS i;

        INSERT INTO audit.events (happened_at, kind, payload)
        SELECT timestamptz '2024-03-01 12:00:00+00' + i * interval '90 minutes',
               (ARRAY['login', 'logout', 'upload', 'delete', 'backup'])[i],
               CASE WHEN i = 3 THEN NULL ELSE jsonb_build_object('n', i, 'ok', i % 2 = 1) END
        FROM generate_series(1, 5) AS i;
        """

    // MARK: - Quoting

    /// `name` as a double-quoted SQL identifier.
    public static func quoteIdentifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// `text` as a single-quoted SQL string literal (standard_conforming_strings is on).
    public static func quoteLiteral(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
    }

    private static func chompNewline(_ text: String) -> String {
        text.hasSuffix("\n") ? String(text.dropLast()) : text
    }
}
