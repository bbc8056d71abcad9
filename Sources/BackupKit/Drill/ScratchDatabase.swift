import BackupCore
import BackupInterop
import Foundation
import Logging

/// The drill's scratch database (DRILL_DATABASE_URL): never the application's, never one the drill did not
/// make, and used by one drill at a time (a session advisory lock, released by the server if the drill dies).
final class ScratchDatabase {
    /// Marks the databases drills create, so a drill never drops a database it did not make.
    static let comment = "contingency restore drill scratch database"

    let parameters: ConnectionParameters
    let name: String
    /// Holds the advisory lock for the drill's whole life.
    private let maintenance: PostgresConnection
    private let logger: Logger

    init(configuration: DrillConfiguration, logger: Logger) throws {
        self.logger = logger
        parameters = try ConnectionParameters(configuration.scratch)
        guard let name = parameters.values["dbname"], !name.isEmpty else {
            throw ContingencyError.configuration("DRILL_DATABASE_URL names no database", hint: "end it with /<scratch database name>")
        }
        self.name = name
        try Self.refuseApplicationDatabase(name, scratch: parameters, application: configuration.restore.database)
        maintenance = try PostgresConnection(parameters.with("dbname", "postgres"))
        let locked = try maintenance.query("SELECT pg_try_advisory_lock(hashtext($1))", ["contingency-drill:" + name]).value(0, 0)
        guard locked == "t" else {
            throw ContingencyError.locked(
                "another restore drill is using the scratch database \(name)", hint: "wait for it to finish; drills do not overlap")
        }
    }

    private static func refuseApplicationDatabase(_ name: String, scratch: ConnectionParameters, application settings: DatabaseSettings) throws {
        let application = try ConnectionParameters(settings)
        let environment = ProcessInfo.processInfo.environment
        let same = { (key: String, variable: String, fallback: String) in
            (scratch.values[key] ?? environment[variable] ?? fallback) == (application.values[key] ?? environment[variable] ?? fallback)
        }
        if name == application.databaseName(environment: environment), same("host", "PGHOST", "localhost"), same("port", "PGPORT", "5432") {
            throw ContingencyError.configuration(
                "DRILL_DATABASE_URL points at the application's own database \(name)",
                hint: "name a scratch database: the drill drops it when it is done")
        }
    }

    /// Creates it, marked as a drill's. Made under another name, marked, then renamed, so that a drill killed
    /// midway never leaves an unmarked database under the scratch name. Leftovers of drills that died (marked,
    /// and free since this drill holds the lock) are dropped first.
    func create() throws {
        let leftovers = try maintenance.query(
            "SELECT datname FROM pg_database WHERE (datname = $1 OR datname LIKE $2) AND shobj_description(oid, 'pg_database') = $3",
            [name, DatabaseRestorer.likePrefix(name + "_incoming_"), Self.comment])
        for row in 0..<leftovers.rowCount {
            if let leftover = leftovers.value(row, 0) { try drop(leftover) }
        }
        if try maintenance.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]).rowCount > 0 {
            throw ContingencyError.configuration(
                "the drill's scratch database \(name) already exists and was not made by a drill",
                hint: "name a database that does not exist in DRILL_DATABASE_URL; the drill creates and drops it")
        }
        let incoming = "\(name)_incoming_\(UUID().uuidString.prefix(8).lowercased())"
        try maintenance.query("CREATE DATABASE \(SQL.identifier(incoming)) TEMPLATE template0")
        try maintenance.query("COMMENT ON DATABASE \(SQL.identifier(incoming)) IS \(SQL.literal(Self.comment))")
        try maintenance.query("ALTER DATABASE \(SQL.identifier(incoming)) RENAME TO \(SQL.identifier(name))")
    }

    func drop() throws { try drop(name) }

    private func drop(_ database: String) throws {
        try maintenance.query("DROP DATABASE IF EXISTS \(SQL.identifier(database)) WITH (FORCE)")
    }
}
