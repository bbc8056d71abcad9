import Foundation
import Testing
import TestSupport

/// Disaster recovery on a new server: the roles that own the objects are created from the backup's
/// globals.sql, so owners and grants come back; or everything is restored without owners on request.
@Suite("Restore on a fresh server")
struct FreshServerTests {
    static let ownership = """
        SELECT string_agg(tablename || ':' || tableowner, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'
        """
    static let grants = """
        SELECT string_agg(grantee || ':' || table_name || ':' || privilege_type, ',' ORDER BY grantee, table_name, privilege_type)
        FROM information_schema.role_table_grants WHERE table_schema = 'public' AND grantee IN ('app_owner', 'app_reader')
        """
    static let memberships = """
        SELECT string_agg(m.rolname || '>' || r.rolname, ',' ORDER BY m.rolname, r.rolname)
        FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
        WHERE m.rolname LIKE 'app\\_%'
        """

    @Test("a second server without the roles: every table, owner, grant and membership equal; or no owners on request")
    func freshServer() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            _ = try await app.server.psql("CREATE ROLE app_owner LOGIN; CREATE ROLE app_reader; GRANT app_reader TO app_owner;")
            _ = try await app.server.psql(
                "ALTER TABLE users OWNER TO app_owner; ALTER TABLE posts OWNER TO app_owner; GRANT SELECT ON users, posts TO app_reader;",
                database: app.database)
            let before = try await app.snapshot()
            let owners = try await app.server.psql(Self.ownership, database: app.database)
            let grants = try await app.server.psql(Self.grants, database: app.database)
            #expect(owners.contains("users:app_owner") && grants.contains("app_reader:users:SELECT"))
            try #require(try await app.run("backup-job").succeeded)

            try await PostgresServer.with { fresh in
                #expect(try await fresh.query("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'app\\_%'") == [["0"]])
                let restore = try await app.run("restore-job", environment: fresh.environment)
                try #require(restore.succeeded, "\(restore)")
                #expect(restore.stdout.contains("Created roles: app_owner, app_reader") || restore.stdout.contains("Created roles: app_reader, app_owner"),
                        "\(restore.stdout)")
                #expect(try await fresh.snapshot(database: app.database) == before.database)
                #expect(try await fresh.psql(Self.ownership, database: app.database) == owners)
                #expect(try await fresh.psql(Self.grants, database: app.database) == grants)
                #expect(try await fresh.psql(Self.memberships) == (try await app.server.psql(Self.memberships)))
            }
            try await PostgresServer.with { fresh in
                let restore = try await app.run("restore-job", environment: fresh.environment.merging(["RESTORE_NO_OWNER": "true"]) { $1 })
                try #require(restore.succeeded, "\(restore)")
                #expect(try await fresh.query("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'app\\_%'") == [["0"]])
                #expect(try await fresh.snapshot(database: app.database) == before.database)
                #expect(try await fresh.psql(Self.ownership, database: app.database).contains("users:postgres"))
            }
        }
    }
}
