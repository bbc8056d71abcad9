import Foundation
import TestSupport
import Testing

/// Disaster recovery on a new server: the roles the dump names (owners, grantees, roles of default privileges,
/// policies and memberships) are created from the backup's globals.sql, so owners and grants come back; or
/// everything is restored without owners on request.
@Suite("Restore on a fresh server")
struct FreshServerTests {
    /// Roles: owners, a reporting role that only appears in grants, a default privileges' grantee, a role only a
    /// policy names, a quoted name, a membership, a password, a connection limit, an expiry, a setting; and a
    /// bystander the database never names.
    static let roles = """
        CREATE ROLE app_owner LOGIN PASSWORD 'owner-password' CONNECTION LIMIT 5 VALID UNTIL '2031-01-01 00:00:00+00';
        CREATE ROLE app_reader;
        GRANT app_reader TO app_owner;
        CREATE ROLE reporting LOGIN;
        ALTER ROLE reporting SET statement_timeout TO '30s';
        COMMENT ON ROLE reporting IS E'read-only reporting:\\n\\tthe dashboards'' role';
        CREATE ROLE etl NOINHERIT;
        CREATE ROLE viewer;
        CREATE ROLE "Audit Team";
        CREATE ROLE bystander;
        """
    static let grants = """
        ALTER TABLE users OWNER TO app_owner;
        ALTER TABLE posts OWNER TO app_owner;
        GRANT SELECT ON users, posts TO app_reader;
        GRANT SELECT ON ALL TABLES IN SCHEMA public TO reporting;
        GRANT USAGE ON SCHEMA audit TO "Audit Team";
        GRANT SELECT ON audit.events TO "Audit Team";
        GRANT UPDATE (name) ON users TO etl;
        ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA public GRANT SELECT ON TABLES TO reporting;
        ALTER DEFAULT PRIVILEGES FOR ROLE app_owner GRANT USAGE ON SEQUENCES TO etl;
        CREATE FUNCTION answer() RETURNS int LANGUAGE sql AS 'SELECT 42';
        REVOKE EXECUTE ON FUNCTION answer() FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION answer() TO etl;
        CREATE POLICY published ON posts FOR SELECT TO viewer USING (published);
        """
    /// Owners and privileges of every object a grant can name, default privileges and policies: `\\dp` and `\\ddp`.
    static let privileges = """
        SELECT 'relation', n.nspname || '.' || c.relname, pg_get_userbyid(c.relowner), coalesce(c.relacl::text, '')
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'audit')
        UNION ALL SELECT 'column', a.attrelid::regclass::text || '.' || a.attname, '', a.attacl::text
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname IN ('public', 'audit') AND a.attacl IS NOT NULL
        UNION ALL SELECT 'schema', nspname, pg_get_userbyid(nspowner), coalesce(nspacl::text, '') FROM pg_namespace WHERE nspname IN ('public', 'audit')
        UNION ALL SELECT 'function', p.oid::regprocedure::text, pg_get_userbyid(p.proowner), coalesce(p.proacl::text, '')
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
        UNION ALL SELECT 'default', pg_get_userbyid(d.defaclrole) || ' in ' || coalesce(n.nspname, 'every schema') || ' on ' || d.defaclobjtype::text,
          '', d.defaclacl::text FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
        UNION ALL SELECT 'policy', tablename || '.' || policyname, array_to_string(roles, ','), qual FROM pg_policies
        ORDER BY 1, 2;
        """
    /// The application's roles: attributes, password hash, comment, settings and memberships.
    static let applicationRoles = """
        SELECT quote_ident(r.rolname), r.rolsuper, r.rolinherit, r.rolcanlogin, r.rolconnlimit, r.rolvaliduntil,
          md5(coalesce(r.rolpassword, '')), coalesce(shobj_description(r.oid, 'pg_authid'), ''),
          coalesce((SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s WHERE s.setrole = r.oid AND s.setdatabase = 0), ''),
          coalesce((SELECT string_agg(g.rolname || CASE WHEN a.admin_option THEN '+admin' ELSE '' END, ',' ORDER BY g.rolname)
            FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid WHERE a.member = r.oid), '')
        FROM pg_authid r WHERE r.rolname NOT LIKE 'pg\\_%' AND r.rolname <> 'postgres' ORDER BY 1;
        """

    @Test(
        "a second server without the roles: every table, owner, grant, default privilege, policy, role and membership equal"
    )
    func freshServer() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            try await app.server.runScript(Self.roles)
            try await app.server.runScript(Self.grants, database: app.database)
            let before = try await app.snapshot()
            let privileges = try await app.server.query(Self.privileges, database: app.database)
            let roles = try await app.server.query(Self.applicationRoles).filter { $0[0] != "bystander" }
            #expect(roles.contains { $0[7] == "read-only reporting:\n\tthe dashboards' role" }, "\(roles)")
            #expect(privileges.contains { $0[1] == "public.users" && $0[3].contains("reporting=r/app_owner") })
            #expect(privileges.contains { $0[0] == "default" && $0[3].contains("reporting=r/app_owner") })
            try #require(try await app.run("backup-job", environment: ["BACKUP_ROLE_PASSWORDS": "true"]).succeeded)
            let manifestFile = try #require(try app.storeFiles().first { $0.hasSuffix(".json") })
            let manifest = try JSONSerialization.jsonObject(
                with: Data(contentsOf: app.backupDirectory.appendingPathComponent(manifestFile)))
            #expect(
                (manifest as? [String: Any])?["roles"] as? [String] == [
                    "Audit Team", "app_owner", "app_reader", "etl", "postgres", "reporting", "viewer",
                ])

            try await PostgresServer.with { fresh in
                #expect(try await fresh.query(Self.applicationRoles).isEmpty)
                let restore = try await app.run("restore-job", environment: fresh.environment)
                try #require(restore.succeeded, "\(restore)")
                #expect(
                    restore.stdout.contains("Created roles: Audit Team, app_owner, app_reader, etl, reporting, viewer"),
                    "\(restore.stdout)")
                #expect(try await fresh.snapshot(database: app.database) == before.database)
                #expect(try await fresh.query(Self.privileges, database: app.database) == privileges)
                #expect(try await fresh.query(Self.applicationRoles) == roles)
                #expect(try await fresh.query("SELECT count(*) FROM pg_roles WHERE rolname = 'bystander'") == [["0"]])
                #expect(
                    try await fresh.query(
                        "SELECT has_table_privilege('reporting', 'invoices', 'SELECT'), has_column_privilege('etl', 'users', 'name', 'UPDATE'), has_function_privilege('etl', 'answer()', 'EXECUTE'), has_function_privilege('reporting', 'answer()', 'EXECUTE')",
                        database: app.database) == [["t", "t", "t", "f"]])
            }
        }
    }

    @Test(
        "an older backup: owners only recorded, or no roles recorded at all (every role of globals.sql); or no roles with RESTORE_NO_OWNER"
    )
    func olderManifests() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            try await app.server.runScript(
                "CREATE ROLE app_owner; CREATE ROLE app_reader; GRANT app_reader TO app_owner; CREATE ROLE bystander;")
            _ = try await app.server.psql(
                "ALTER TABLE users OWNER TO app_owner; GRANT SELECT ON users TO app_reader;", database: app.database)
            try #require(try await app.run("backup-job").succeeded)
            let name = try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") })
            let archive = app.backupDirectory.appendingPathComponent(name)
            for (roles, expected) in [
                (#"["app_owner", "postgres"]"#, "app_owner, app_reader"), ("null", "app_owner, app_reader, bystander"),
            ] {
                try await BackupForger.forge(archive, [.setMetadata("roles", json: roles)])
                try await PostgresServer.with { fresh in
                    let restore = try await app.run("restore-job", environment: fresh.environment)
                    try #require(restore.succeeded, "\(restore)")
                    #expect(restore.stdout.contains("Created roles: \(expected)\n"), "\(roles): \(restore.stdout)")
                    #expect(
                        try await fresh.query(
                            "SELECT has_table_privilege('app_reader', 'users', 'SELECT')", database: app.database) == [
                                ["t"]
                            ])
                }
            }
            // RESTORE_NO_OWNER: no roles, everything owned by the restoring role. (A row security policy naming a
            // role would still need it: policies are not privileges, pg_restore --no-acl keeps them.)
            let before = try await app.server.snapshot(database: app.database)
            try await PostgresServer.with { fresh in
                let restore = try await app.run(
                    "restore-job", environment: fresh.environment.merging(["RESTORE_NO_OWNER": "true"]) { $1 })
                try #require(restore.succeeded, "\(restore)")
                #expect(try await fresh.query("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'app\\_%'") == [["0"]])
                #expect(try await fresh.snapshot(database: app.database) == before)
                #expect(
                    try await fresh.psql(
                        "SELECT tableowner FROM pg_tables WHERE tablename = 'users'", database: app.database)
                        == "postgres")
            }
        }
    }
}
