/// What a backup's `globals.sql` (`pg_dumpall --roles-only`) says about the cluster's roles, reduced to what a
/// restore may recreate: each role's name exactly as pg_dumpall quoted it, its attributes from an allow-list,
/// its per-role settings and comment, and the memberships between roles. Built by `RoleCatalog.parse`; the
/// statements a restore runs are then generated from it (`RolePlan`), never copied from the file.
public struct RoleCatalog: Equatable, Sendable {
    public var roles: [RoleDefinition]
    public var memberships: [RoleMembership]
    /// Statements understood but never restored (privileges on configuration parameters), for the log.
    public var ignored: [String]

    public init(roles: [RoleDefinition] = [], memberships: [RoleMembership] = [], ignored: [String] = []) {
        self.roles = roles
        self.memberships = memberships
        self.ignored = ignored
    }

    public func role(named name: String) -> RoleDefinition? { roles.first { $0.name == name } }

    /// The names a role may never have in a `globals.sql` a restore acts on, compared case-insensitively:
    /// SQL's role keywords (which pg_dumpall would quote, and which a forged file uses unquoted to reach every
    /// role or the restoring one), and PostgreSQL's predefined `pg_*` roles (which pg_dumpall never creates).
    public static let reservedNames: Set<String> = [
        "all", "public", "current_user", "current_role", "session_user", "none",
    ]

    /// Whether `name` is a keyword-like reserved name or a predefined role (`pg_…`), case-insensitively.
    public static func isReserved(_ name: String) -> Bool {
        let lowered = name.lowercased()
        return reservedNames.contains(lowered) || isPredefined(name)
    }

    /// Whether `name` is in PostgreSQL's own `pg_` namespace of roles (pg_monitor, pg_execute_server_program…).
    public static func isPredefined(_ name: String) -> Bool { name.lowercased().hasPrefix("pg_") }
}

/// One role of `globals.sql`: its `CREATE ROLE`, the `ALTER ROLE … WITH` attributes, `ALTER ROLE … SET`
/// settings and `COMMENT ON ROLE`.
public struct RoleDefinition: Equatable, Sendable {
    /// Exactly as pg_dumpall quoted it (`"App"` is `App`, `app` is `app`).
    public var name: String
    public var attributes: RoleAttributes
    public var settings: [RoleSetting]
    public var comment: String?
    /// The line of its `CREATE ROLE`, for messages.
    public var line: Int

    public init(
        name: String, attributes: RoleAttributes = .init(), settings: [RoleSetting] = [], comment: String? = nil,
        line: Int = 0
    ) {
        self.name = name
        self.attributes = attributes
        self.settings = settings
        self.comment = comment
        self.line = line
    }
}

/// The attributes `ALTER ROLE … WITH` may give, PostgreSQL's defaults when absent. Nothing else is accepted.
public struct RoleAttributes: Equatable, Sendable {
    public var superuser = false
    public var inherit = true
    public var createRole = false
    public var createDB = false
    public var login = false
    public var replication = false
    public var bypassRLS = false
    /// nil: no limit.
    public var connectionLimit: Int?
    /// The timestamp as pg_dumpall wrote it (`2030-01-01 00:00:00+00`, `infinity`).
    public var validUntil: String?
    /// A password hash (`SCRAM-SHA-256$…` or `md5` and 32 hex digits); never a plain-text password.
    public var passwordHash: String?

    public init(
        superuser: Bool = false, inherit: Bool = true, createRole: Bool = false, createDB: Bool = false,
        login: Bool = false,
        replication: Bool = false, bypassRLS: Bool = false, connectionLimit: Int? = nil, validUntil: String? = nil,
        passwordHash: String? = nil
    ) {
        self.superuser = superuser
        self.inherit = inherit
        self.createRole = createRole
        self.createDB = createDB
        self.login = login
        self.replication = replication
        self.bypassRLS = bypassRLS
        self.connectionLimit = connectionLimit
        self.validUntil = validUntil
        self.passwordHash = passwordHash
    }
}

/// `ALTER ROLE name SET parameter TO 'value'[, 'value' …]`.
public struct RoleSetting: Equatable, Sendable {
    public var parameter: String
    public var values: [String]

    public init(parameter: String, values: [String]) {
        self.parameter = parameter
        self.values = values
    }
}

/// `GRANT role TO member [WITH ADMIN OPTION | INHERIT … | SET …] [GRANTED BY grantor]`. The grantor is not kept:
/// a restore makes its grants as the restoring role.
public struct RoleMembership: Equatable, Sendable {
    public var role: String
    public var member: String
    public var adminOption: Bool
    /// PostgreSQL 16's per-grant options; nil when the file does not give them (PostgreSQL 15).
    public var inherit: Bool?
    public var set: Bool?
    public var line: Int

    public init(
        role: String, member: String, adminOption: Bool = false, inherit: Bool? = nil, set: Bool? = nil, line: Int = 0
    ) {
        self.role = role
        self.member = member
        self.adminOption = adminOption
        self.inherit = inherit
        self.set = set
        self.line = line
    }
}
