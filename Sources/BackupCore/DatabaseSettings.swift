/// Where the database is, as the operator wrote it. Resolved into libpq parameters by `PostgresConnection`;
/// libpq's own `PG*` variables keep working underneath. `description` never shows the password.
public struct DatabaseSettings: Sendable, Equatable, CustomStringConvertible {
    /// A libpq URI or conninfo string; may contain a password.
    public var url: String?
    /// libpq keyword → value, overriding the URL (`dbname`, `user`, `password`, `host`, `port`).
    public var overrides: [String: String]

    public init(url: String? = nil, overrides: [String: String] = [:]) {
        self.url = url
        self.overrides = overrides
    }

    public static let settings: [Setting] = [
        Settings.databaseURL, Settings.databaseName, Settings.databaseUser, Settings.databasePassword,
        Settings.pgPassword,
    ]

    public static func load(_ values: ConfigurationValues) throws(ContingencyError) -> DatabaseSettings {
        var overrides: [String: String] = [:]
        if let name = try values.nonEmpty(Settings.databaseName) { overrides["dbname"] = name }
        if let user = try values.nonEmpty(Settings.databaseUser) { overrides["user"] = user }
        if let password = try values.nonEmpty(Settings.databasePassword) {
            overrides["password"] = password
        } else if values.environment[Settings.pgPassword.name] == nil,
            let password = try values.nonEmpty(Settings.pgPassword)
        {
            // PGPASSWORD itself is read by libpq; only PGPASSWORD_FILE needs resolving here.
            overrides["password"] = password
        }
        return DatabaseSettings(url: try values.nonEmpty(Settings.databaseURL), overrides: overrides)
    }

    public var description: String {
        let shown = overrides.filter { $0.key != "password" }.sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        return (url != nil ? "DATABASE_URL (redacted) " : "") + shown
    }
}
