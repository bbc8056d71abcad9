import Foundation

/// Every role of a cluster as a restore could change it: attributes (pg_authid, the password as a digest
/// only), comment, per-role settings (pg_db_role_setting) and memberships (pg_auth_members), one sorted line
/// each. Compare two with `==`; `differences(from:)` names what changed.
public struct RoleSnapshot: Equatable, Sendable, CustomStringConvertible {
    /// `role name|attributes…` lines, sorted.
    public let roles: [String]
    /// `role name|database|settings` lines, sorted.
    public let settings: [String]
    /// `role>member|admin option|grantor` lines, sorted.
    public let memberships: [String]

    /// Takes the snapshot as `server`'s superuser (pg_authid is readable by superusers only).
    public static func take(_ server: PostgresServer) async throws -> RoleSnapshot {
        let roles = try await server.query(
            """
            SELECT concat_ws('|', quote_ident(rolname), rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin,
                rolreplication, rolbypassrls, rolconnlimit, coalesce(md5(rolpassword), 'no password'),
                coalesce(rolvaliduntil::text, 'no expiry'), coalesce(shobj_description(oid, 'pg_authid'), 'no comment'))
            FROM pg_authid ORDER BY 1;
            """)
        let settings = try await server.query(
            """
            SELECT concat_ws('|', coalesce(quote_ident(r.rolname), 'all roles'), coalesce(quote_ident(d.datname), 'all databases'),
                array_to_string(s.setconfig, ','))
            FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole LEFT JOIN pg_database d ON d.oid = s.setdatabase
            ORDER BY 1;
            """)
        let memberships = try await server.query(
            """
            SELECT concat_ws('|', quote_ident(r.rolname) || '>' || quote_ident(m.rolname), a.admin_option, quote_ident(g.rolname))
            FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
            LEFT JOIN pg_roles g ON g.oid = a.grantor ORDER BY 1;
            """)
        return RoleSnapshot(
            roles: roles.map { $0[0] }, settings: settings.map { $0[0] }, memberships: memberships.map { $0[0] })
    }

    public init(roles: [String], settings: [String], memberships: [String]) {
        self.roles = roles
        self.settings = settings
        self.memberships = memberships
    }

    /// One line per difference from `expected`: what is gone (`-`) and what is new or changed (`+`).
    public func differences(from expected: RoleSnapshot) -> [String] {
        var lines: [String] = []
        for (what, before, after) in [
            ("role", expected.roles, roles), ("setting", expected.settings, settings),
            ("membership", expected.memberships, memberships),
        ] {
            lines += before.filter { !after.contains($0) }.map { "- \(what) \($0)" }
            lines += after.filter { !before.contains($0) }.map { "+ \(what) \($0)" }
        }
        return lines
    }

    public var description: String {
        (roles.map { "role \($0)" } + settings.map { "setting \($0)" } + memberships.map { "membership \($0)" }).joined(
            separator: "\n")
    }
}
