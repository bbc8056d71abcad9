import Foundation
import TestSupport
import Testing

/// A real backup whose globals.sql an attacker with write access to the store rewrote, every checksum made to
/// match again (`BackupForger`): the restore refuses it with a clear error before anything is touched, or
/// restores without any effect on the cluster's roles. After every attempt every existing role's attributes,
/// settings and memberships are exactly as before (`RoleSnapshot`), and the application's data is as before
/// a refused restore or as in the backup after one that went through.
@Suite("Forged globals.sql")
struct ForgedGlobalsTests {
    /// Roles that exist before the backup and are still there when the forged backups are restored.
    static let roles = """
        CREATE ROLE app LOGIN PASSWORD 'app-password' CONNECTION LIMIT 7;
        ALTER ROLE app SET statement_timeout TO '9s';
        CREATE ROLE app_owner;
        CREATE ROLE auditor;
        GRANT auditor TO app;
        CREATE ROLE \(Self.long);
        """
    /// A role name of the 63 bytes PostgreSQL keeps: a longer one in globals.sql would be cut to it.
    static let long = String(repeating: "r", count: 63)
    /// A role name that is SQL if pasted unquoted.
    static let oddName = #"evil" SUPERUSER; GRANT pg_execute_server_program TO "app"#
    static let scram =
        "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0$c3RvcmVka2V5c3RvcmVka2V5c3RvcmVka2V5c3RvcmU=:c2VydmVya2V5c2VydmVya2V5c2VydmVya2V5c2VydmU="

    /// What a restore of a forged backup must end in.
    enum Outcome: Sendable {
        /// Exit 1, the error giving this reason; nothing touched.
        case refused(String)
        /// Exit 0, the cluster's roles exactly as before.
        case noEffect
        /// Exit 0, one role of exactly this name created without any privilege beyond logging in (a password hash
        /// when `withPassword`), every other role as before.
        case unprivileged(String, withPassword: Bool)
    }

    /// One forgery: what globals.sql becomes (from the real one), and roles metadata.json is made to say the dump
    /// needs besides those recorded.
    struct Forgery: Sendable, CustomStringConvertible {
        let description: String
        let globals: @Sendable (String) -> [UInt8]
        var alsoNeeded: [String] = []
        let outcome: Outcome

        static func appending(_ name: String, _ lines: String, alsoNeeded: [String] = [], _ outcome: Outcome) -> Forgery
        {
            Forgery(
                description: name, globals: { Array(($0 + lines + "\n").utf8) }, alsoNeeded: alsoNeeded,
                outcome: outcome)
        }
    }

    static let forgeries: [Forgery] = [
        .appending(
            "case folding", "CREATE ROLE App;\nALTER ROLE App WITH SUPERUSER;",
            .refused("not quoted as pg_dumpall quotes names")),
        .appending(
            "ALTER ROLE ALL", "ALTER ROLE ALL SET search_path TO 'evil';",
            .refused("not quoted as pg_dumpall quotes names")),
        .appending(
            #"a role named "all""#, #"CREATE ROLE "all";"# + "\n" + #"ALTER ROLE "all" WITH SUPERUSER;"#,
            .refused("reserved word")),
        .appending(
            "CURRENT_USER", "ALTER ROLE CURRENT_USER WITH NOSUPERUSER;",
            .refused("not quoted as pg_dumpall quotes names")),
        .appending(#""current_role""#, #"GRANT app TO "current_role";"#, .refused("reserved word")),
        .appending(
            "a predefined role as member", "GRANT pg_execute_server_program TO pg_monitor;",
            .refused("predefined roles")),
        .appending(
            "two statements on a line", "CREATE ROLE x; ALTER ROLE postgres WITH NOSUPERUSER;",
            .refused("more than one statement")),
        .appending(
            "a role the file does not create", "GRANT pg_execute_server_program TO outsider;",
            .refused("which the file does not create")),
        Forgery(
            description: "an existing role's attributes given twice",
            globals: { Array(($0 + "ALTER ROLE app WITH SUPERUSER;\n").utf8) },
            outcome: .refused("attributes are given twice")),
        Forgery(
            description: "a comment after a statement",
            globals: { text in
                Array(
                    text.split(separator: "\n", omittingEmptySubsequences: false).map {
                        $0.hasPrefix("ALTER ROLE app WITH") ? $0 + " -- ok" : $0
                    }
                    .joined(separator: "\n").utf8)
            }, outcome: .refused("the character U+2D")),
        Forgery(
            description: "ALTER ROLE without its CREATE ROLE",
            globals: { text in
                Array(
                    text.split(separator: "\n", omittingEmptySubsequences: false).filter { $0 != "CREATE ROLE app;" }
                        .joined(separator: "\n").utf8)
            }, outcome: .refused("which the file does not create")),
        .appending(
            "escape sequences in a quoted name", "CREATE ROLE \"a\u{1B}]0;x\u{07}b\";", .refused("a control character")),
        Forgery(
            description: "bytes that are not UTF-8",
            globals: { Array(($0 + "CREATE ROLE \"caf").utf8) + [0xE9] + Array("\";\n".utf8) },
            outcome: .refused("not UTF-8")),
        .appending(
            "a name PostgreSQL would cut to an existing role's",
            "CREATE ROLE \(long)x;\nALTER ROLE \(long)x WITH SUPERUSER;\nGRANT pg_execute_server_program TO \(long)x;",
            alsoNeeded: ["\(long)x"], .refused("longer than the 63 bytes")),
        .appending(
            "a plain-text password", "CREATE ROLE intruder;\nALTER ROLE intruder WITH LOGIN PASSWORD 'known';",
            alsoNeeded: ["intruder"],
            .refused("never a plain-text password")),
        .appending("a psql shell command", "\\! touch /tmp/contingency-pwned", .refused("an unknown psql command")),
        .appending(
            "a predefined role granted to an existing role", "GRANT pg_execute_server_program TO app;", .noEffect),
        .appending("an existing role's setting", "ALTER ROLE app SET session_preload_libraries TO 'evil';", .noEffect),
        .appending("an existing role granted to another", "GRANT app_owner TO app WITH ADMIN OPTION;", .noEffect),
        .appending(
            "a new role asking for everything",
            """
            CREATE ROLE intruder;
            ALTER ROLE intruder WITH SUPERUSER CREATEROLE REPLICATION LOGIN PASSWORD '\(scram)';
            ALTER ROLE intruder SET session_preload_libraries TO 'evil';
            GRANT pg_execute_server_program TO intruder GRANTED BY postgres;
            GRANT postgres TO intruder WITH ADMIN OPTION GRANTED BY postgres;
            GRANT app_owner TO intruder GRANTED BY postgres;
            GRANT intruder TO app GRANTED BY postgres;
            """,
            alsoNeeded: ["intruder"], .unprivileged("intruder", withPassword: true)),
        .appending(
            "a quoted name holding SQL",
            #"""
            CREATE ROLE "evil"" SUPERUSER; GRANT pg_execute_server_program TO ""app";
            ALTER ROLE "evil"" SUPERUSER; GRANT pg_execute_server_program TO ""app" WITH LOGIN;
            GRANT "evil"" SUPERUSER; GRANT pg_execute_server_program TO ""app" TO app;
            """#,
            alsoNeeded: [oddName], .unprivileged(oddName, withPassword: false)),
    ]

    @Test("each forgery is refused before anything is touched, or has no effect on the roles that exist")
    func forgedGlobals() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            try await app.server.runScript(Self.roles)
            _ = try await app.server.psql(
                "ALTER TABLE users OWNER TO app_owner; GRANT SELECT ON users TO auditor;", database: app.database)
            try #require(try await app.run("backup-job").succeeded)
            let backedUp = try await app.snapshot()
            let name = try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") })
            let original = app.backupDirectory.appendingPathComponent(name)
            let globals = String(decoding: try await BackupForger.member("globals.sql", of: original), as: UTF8.self)
            try #require(globals.contains("CREATE ROLE app;\n"))
            let roles = try await RoleSnapshot.take(app.server)
            // The owners, the grantee of SELECT on users and the owner of the rest: what the backup recorded.
            let manifest =
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: original.path + ".json")))
                as? [String: Any]
            let recorded = try #require(manifest?["roles"] as? [String])
            #expect(recorded == ["app_owner", "auditor", "postgres"])

            for (index, forgery) in Self.forgeries.enumerated() {
                let folder = app.root.appending("forged-\(index)", isDirectory: true)
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                let archive = folder.appendingPathComponent(name)
                try FileManager.default.copyItem(at: original, to: archive)
                try FileManager.default.copyItem(
                    at: URL(fileURLWithPath: original.path + ".json"), to: URL(fileURLWithPath: archive.path + ".json"))
                var changes: [BackupForger.Change] = [.replace("globals.sql", Data(forgery.globals(globals)))]
                if !forgery.alsoNeeded.isEmpty {
                    let needed = recorded + forgery.alsoNeeded
                    changes.append(
                        .setMetadata("roles", json: String(decoding: try JSONEncoder().encode(needed), as: UTF8.self)))
                }
                try await BackupForger.forge(archive, changes)

                _ = try await app.server.psql(
                    "UPDATE users SET name = 'changed before forgery \(index)'", database: app.database)
                let current = try await app.snapshot()
                let restore = try await app.run("restore-job", environment: ["LATEST_BACKUP": archive.path])
                #expect(restore.terminationSignal == nil, "\(forgery): \(restore)")
                let after = try await RoleSnapshot.take(app.server)
                switch forgery.outcome {
                case .refused(let reason):
                    #expect(restore.status == 1, "\(forgery): \(restore)")
                    #expect(
                        restore.stderr.contains("is refused") && restore.stderr.contains(reason),
                        "\(forgery): \(restore.stderr)")
                    #expect(after == roles, "\(forgery): \(after.differences(from: roles))")
                    #expect(try await app.snapshot() == current, "\(forgery)")
                case .noEffect:
                    #expect(restore.status == 0, "\(forgery): \(restore)")
                    #expect(after == roles, "\(forgery): \(after.differences(from: roles))")
                    #expect(try await app.snapshot() == backedUp, "\(forgery)")
                case .unprivileged(let name, let withPassword):
                    #expect(restore.status == 0, "\(forgery): \(restore)")
                    let quoted = PostgresServer.quoteIdentifier(name)
                    let others = RoleSnapshot(
                        roles: after.roles.filter { !$0.hasPrefix(name + "|") && !$0.hasPrefix(quoted + "|") },
                        settings: after.settings, memberships: after.memberships)
                    #expect(others == roles, "\(forgery): \(after.differences(from: roles))")
                    // LOGIN (and the password hash) only: no SUPERUSER, CREATEROLE or REPLICATION, no membership.
                    let created = try await app.server.query(
                        "SELECT rolsuper, rolcreaterole, rolreplication, rolcanlogin, rolpassword IS NOT NULL FROM pg_authid WHERE rolname = \(PostgresServer.quoteLiteral(name))"
                    )
                    #expect(created == [["f", "f", "f", "t", withPassword ? "t" : "f"]], "\(forgery)")
                    let log = restore.stdout + restore.stderr
                    if name == "intruder" {
                        #expect(log.contains("intruder is created without SUPERUSER"), "\(log)")
                        #expect(log.contains("intruder is not made a member of pg_execute_server_program"), "\(log)")
                    }
                    _ = try await app.server.psql("DROP ROLE \(quoted)")
                    #expect(try await app.snapshot() == backedUp, "\(forgery)")
                }
                #expect(
                    try await app.server.query(
                        "SELECT count(*) FROM pg_database WHERE datname LIKE 'visual\\_db\\_restore\\_%'") == [["0"]])
            }
        }
    }

    @Test("an encrypted backup forged by someone holding only the public recipient is refused the same way")
    func encrypted() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let keys = app.root.appending("keys.txt")
            _ = try await ProcessRunner.run("age-keygen", ["-o", keys.path], requireSuccess: true)
            let recipient = try await ProcessRunner.run("age-keygen", ["-y", keys.path], requireSuccess: true).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
            try await app.server.runScript("CREATE ROLE app LOGIN;")
            try #require(try await app.run("backup-job", environment: ["AGE_RECIPIENTS": recipient]).succeeded)
            let name = try #require(try app.storeFiles().first { $0.hasSuffix(".age") })
            let archive = app.backupDirectory.appendingPathComponent(name)
            let globals = try await BackupForger.member("globals.sql", of: archive, identityFile: keys)
            try await BackupForger.forge(
                archive, [.replace("globals.sql", globals + Data("ALTER ROLE ALL SET search_path TO 'evil';\n".utf8))],
                identityFile: keys, recipients: [recipient])
            let roles = try await RoleSnapshot.take(app.server)
            _ = try await app.server.psql("UPDATE users SET name = 'changed'", database: app.database)
            let current = try await app.snapshot()
            let restore = try await app.run("restore-job", environment: ["AGE_IDENTITY_FILE": keys.path])
            #expect(restore.status == 1 && restore.terminationSignal == nil, "\(restore)")
            #expect(restore.stderr.contains("is refused: the role name ALL is not quoted"), "\(restore.stderr)")
            #expect(try await RoleSnapshot.take(app.server) == roles)
            #expect(try await app.snapshot() == current)
        }
    }
}

/// The forger itself: whatever it changes, the backup still passes every integrity check, so that a test
/// using it exercises what comes after them.
@Suite("BackupForger")
struct BackupForgerTests {
    @Test("members replaced, added and removed, metadata edited, in gzip and zstd archives: the backup still verifies")
    func forgedStillVerifies() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            for compression in ["gzip", "zstd"] {
                try #require(
                    try await app.run("backup-job", environment: ["BACKUP_COMPRESSION": compression]).succeeded)
                let suffix = compression == "gzip" ? ".tar.gz" : ".tar.zst"
                let name = try #require(try app.storeFiles().last { $0.hasSuffix(suffix) })
                let archive = app.backupDirectory.appendingPathComponent(name)
                try await BackupForger.forge(
                    archive,
                    [
                        .replace("package.json", Data(#"{"name":"forged"}"#.utf8)),
                        .add("uploads/planted.txt", Data("planted".utf8)),
                        .remove(".env.backup"), .setMetadata("version", json: #""6.6.6""#),
                    ])
                #expect(try await BackupForger.member("package.json", of: archive) == Data(#"{"name":"forged"}"#.utf8))
                #expect(try await BackupForger.member("uploads/planted.txt", of: archive) == Data("planted".utf8))
                let manifest =
                    try JSONSerialization.jsonObject(
                        with: Data(contentsOf: URL(fileURLWithPath: archive.path + ".json"))) as? [String: Any]
                #expect(manifest?["version"] as? String == "6.6.6")
                let members = (manifest?["members"] as? [[String: Any]])?.compactMap { $0["name"] as? String } ?? []
                #expect(!members.contains(".env.backup") && members.contains("package.json"), "\(members)")
                let verify = try await app.run("restore-job", ["--verify"], environment: ["LATEST_BACKUP": name])
                #expect(verify.succeeded, "\(verify)")
                #expect((manifest?["uploads"] as? [String: Any])?["files"] as? Int == 4)
                try await BackupForger.forge(archive, [.remove("uploads/planted.txt")])
                let again = try await app.run("restore-job", ["--verify"], environment: ["LATEST_BACKUP": name])
                #expect(again.succeeded, "\(again)")
            }
        }
    }
}
