/// What a restore does with a backup's roles on one server, decided before any statement runs, and the
/// statements themselves, built from the parsed `RoleCatalog` with `SQL`'s quoting (never text of the file).
///
/// The rules:
/// - Only the roles the dump needs are created (those the backup recorded: owners, grantees and grantors of
///   its objects' privileges and default privileges, roles named by policies and user mappings; the roles
///   those are members of, and their members, such as the application's login role in the NOLOGIN role that
///   owns its objects), or every role of the file when the backup recorded none (older backups). A
///   needed role that neither exists nor is in the file stops the restore before anything is done.
/// - A role that exists is never changed: no attribute, password, setting, comment or membership. It is
///   listed as kept.
/// - A new role gets LOGIN, NOINHERIT, CREATEDB, CONNECTION LIMIT, VALID UNTIL and a password hash as recorded;
///   BYPASSRLS only when the restoring role is a superuser (PostgreSQL's own rule). SUPERUSER, CREATEROLE and
///   REPLICATION are never given (each reaches beyond the restored database: the whole cluster, its other
///   roles, a copy of every database through replication); a warning names the role and the statement to
///   run by hand.
/// - Per-role settings are restored only for parameters in `allowedSettings` (session behaviour); others are
///   reported.
/// - Memberships are granted only between two roles this restore creates. Never to an existing role (it
///   would change it), never of an existing role to a new one (that hands the new role, defined by the
///   backup, the existing one's rights), never of a predefined `pg_*` role (pg_execute_server_program and the
///   like reach the server's files and programs). Each one left out is reported with its statement.
public struct RolePlan: Equatable, Sendable {
    /// One role to create: its `CREATE ROLE`, then its settings and comment (each may fail alone).
    public struct Creation: Equatable, Sendable {
        public var name: String
        public var create: String
        public var extras: [String]

        public init(name: String, create: String, extras: [String]) {
            self.name = name
            self.create = create
            self.extras = extras
        }
    }

    public var creations: [Creation]
    /// `GRANT role TO member` between created roles.
    public var grants: [String]
    /// Needed roles that exist and are left as they are.
    public var kept: [String]
    /// What was left out and why, for the log.
    public var notes: [String]

    /// Parameters a restored role's `ALTER ROLE … SET` may set: they shape that role's own sessions only.
    public static let allowedSettings: Set<String> = [
        "search_path", "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout",
        "idle_session_timeout", "work_mem", "maintenance_work_mem", "temp_buffers", "timezone", "datestyle",
        "intervalstyle", "extra_float_digits", "bytea_output", "client_min_messages", "client_encoding",
        "default_transaction_isolation", "default_transaction_read_only", "default_transaction_deferrable",
        "application_name", "lc_monetary", "lc_numeric", "lc_time", "default_text_search_config", "jit",
    ]

    /// Decides, from the parsed file, the roles the dump needs (nil: every role of the file), the names of the
    /// server's roles, and whether the restoring role is a superuser.
    public static func make(catalog: RoleCatalog, needed: [String]?, existing: Set<String>, superuser: Bool) throws
        -> RolePlan
    {
        var notes = catalog.ignored
        // Predefined roles are the server's own: never created, whatever a manifest lists.
        var wanted = Set((needed ?? catalog.roles.map(\.name)).filter { !RoleCatalog.isPredefined($0) })
        var grew = true
        while grew {
            grew = false
            for membership in catalog.memberships
            where !RoleCatalog.isPredefined(membership.role) && !RoleCatalog.isPredefined(membership.member) {
                // Up: what a needed role is a member of. Down: the members of a needed role, such as the
                // application's login role in a NOLOGIN role owning its objects, which the dump never names.
                for (from, to) in [(membership.member, membership.role), (membership.role, membership.member)]
                where wanted.contains(from) && !wanted.contains(to) {
                    wanted.insert(to)
                    grew = true
                }
            }
        }
        // Names from the manifest, shown with control characters escaped.
        let missing = wanted.filter { !existing.contains($0) && catalog.role(named: $0) == nil }.sorted()
            .map(RoleCatalog.excerpt)
        guard missing.isEmpty else {
            throw ContingencyError.failed(
                "the dump needs the roles \(missing.joined(separator: ", ")), which neither exist on the server nor are in the backup's globals.sql; nothing was restored",
                hint: "create them first, or set RESTORE_NO_OWNER=true to restore without owners and grants")
        }
        let created = catalog.roles.filter { wanted.contains($0.name) && !existing.contains($0.name) }
        let createdNames = Set(created.map(\.name))
        var creations: [Creation] = []
        for role in created {
            creations.append(creation(of: role, superuser: superuser, notes: &notes))
        }

        var grants: [String] = []
        for membership in catalog.memberships
        where createdNames.contains(membership.member) || createdNames.contains(membership.role) {
            let statement = grant(membership)
            if RoleCatalog.isPredefined(membership.role) {
                notes.append(
                    "\(membership.member) is not made a member of \(membership.role): a restore never grants predefined roles (\(statement) by hand if intended)"
                )
            } else if !createdNames.contains(membership.member) {
                if existing.contains(membership.member) {
                    notes.append(
                        "\(membership.member) exists and is left as it is: not made a member of \(membership.role) (\(statement) by hand if intended)"
                    )
                } else {
                    // Often the application's login role, a member of the role owning its objects: say so.
                    notes.append(
                        "\(membership.member) is a member of \(membership.role) in the backup but is not created: the dump names no object of it (create it and \(statement) by hand if the application logs in as it)"
                    )
                }
            } else if !createdNames.contains(membership.role) {
                notes.append(
                    "\(membership.member) is not made a member of the existing role \(membership.role): that would give a role defined by the backup its rights (\(statement) by hand if intended)"
                )
            } else {
                grants.append(statement)
            }
        }
        let kept =
            catalog.roles.map(\.name).filter { wanted.contains($0) && existing.contains($0) }
            + wanted.subtracting(catalog.roles.map(\.name)).sorted()
        return RolePlan(creations: creations, grants: grants, kept: kept, notes: notes)
    }

    private static func creation(of role: RoleDefinition, superuser: Bool, notes: inout [String]) -> Creation {
        let name = SQL.identifier(role.name)
        let attributes = role.attributes
        var options: [String] = []
        if attributes.login { options.append("LOGIN") }
        if !attributes.inherit { options.append("NOINHERIT") }
        if attributes.createDB { options.append("CREATEDB") }
        if attributes.bypassRLS {
            if superuser {
                options.append("BYPASSRLS")
            } else {
                notes.append(
                    "\(role.name) is created without BYPASSRLS: only a superuser may give it (ALTER ROLE \(name) BYPASSRLS as one, if intended)"
                )
            }
        }
        for (held, attribute) in [
            (attributes.superuser, "SUPERUSER"), (attributes.createRole, "CREATEROLE"),
            (attributes.replication, "REPLICATION"),
        ] where held {
            notes.append(
                "\(role.name) is created without \(attribute): a restore never gives it (ALTER ROLE \(name) \(attribute) by hand if intended)"
            )
        }
        if let limit = attributes.connectionLimit { options.append("CONNECTION LIMIT \(limit)") }
        if let time = attributes.validUntil { options.append("VALID UNTIL \(SQL.literal(time))") }
        if let hash = attributes.passwordHash { options.append("PASSWORD \(SQL.literal(hash))") }
        let create = "CREATE ROLE \(name)" + (options.isEmpty ? "" : " WITH " + options.joined(separator: " "))

        var extras: [String] = []
        for setting in role.settings {
            guard allowedSettings.contains(setting.parameter.lowercased()) else {
                notes.append(
                    "\(role.name)'s setting \(setting.parameter) is not restored: only settings of a session's behaviour are (search_path, statement_timeout, work_mem, TimeZone…)"
                )
                continue
            }
            extras.append(
                "ALTER ROLE \(name) SET \(SQL.identifier(setting.parameter)) TO \(setting.values.map(SQL.literal).joined(separator: ", "))"
            )
        }
        if let comment = role.comment { extras.append("COMMENT ON ROLE \(name) IS \(SQL.literal(comment))") }
        return Creation(name: role.name, create: create, extras: extras)
    }

    /// The grant as the restoring role makes it (no GRANTED BY: the recorded grantor may not exist, and naming
    /// another needs a superuser).
    static func grant(_ membership: RoleMembership) -> String {
        var options: [String] = []
        if membership.adminOption { options.append("ADMIN OPTION") }
        if let inherit = membership.inherit { options.append("INHERIT \(inherit ? "TRUE" : "FALSE")") }
        if let set = membership.set { options.append("SET \(set ? "TRUE" : "FALSE")") }
        return "GRANT \(SQL.identifier(membership.role)) TO \(SQL.identifier(membership.member))"
            + (options.isEmpty ? "" : " WITH " + options.joined(separator: ", "))
    }
}
