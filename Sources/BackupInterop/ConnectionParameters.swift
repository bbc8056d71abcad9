import BackupCore
import CLibPQ
import Foundation

/// libpq keyword parameters resolved from `DatabaseSettings`: the URL parsed by libpq itself
/// (`PQconninfoParse`), then the explicit overrides. Child processes (pg_dump, pg_restore) get the same
/// values as their `PG*` environment variables, so no password ever appears on a command line.
public struct ConnectionParameters: Sendable, Equatable, CustomStringConvertible {
    /// keyword → value, e.g. `dbname`, `user`, `host`, `port`, `password`, `sslmode`.
    public var values: [String: String]
    /// keyword → libpq environment variable name, from libpq's own option table.
    private var environmentNames: [String: String]

    public init(_ settings: DatabaseSettings) throws {
        values = [:]
        environmentNames = Self.libpqEnvironmentNames()
        if let url = settings.url {
            var message: UnsafeMutablePointer<CChar>?
            guard let options = PQconninfoParse(url, &message) else {
                // libpq's message quotes the offending part, which may be the password: it is not shown.
                if let message { PQfreemem(message) }
                throw ContingencyError.configuration(
                    "DATABASE_URL is not a valid libpq connection string",
                    hint: "write it as postgres://user:password@host:5432/dbname, with special characters in the password percent-encoded (% as %25, @ as %40)")
            }
            defer { PQconninfoFree(options) }
            var option = options
            while let keyword = option.pointee.keyword {
                if let value = option.pointee.val { values[String(cString: keyword)] = String(cString: value) }
                option += 1
            }
        }
        for (keyword, value) in settings.overrides { values[keyword] = value }
    }

    /// A copy with one parameter changed (connecting to the `postgres` maintenance database, say).
    public func with(_ keyword: String, _ value: String) -> ConnectionParameters {
        var copy = self
        copy.values[keyword] = value
        return copy
    }

    /// The same server's maintenance database (`postgres`, or `template1` when the target is `postgres`
    /// itself), for creating, renaming and dropping `database`.
    public func maintenance(besides database: String) -> ConnectionParameters {
        with("dbname", database == "postgres" ? "template1" : "postgres")
    }

    /// The database name these parameters point to, falling back as libpq does: PGDATABASE, then the user.
    public func databaseName(environment: [String: String]) -> String? {
        values["dbname"] ?? environment["PGDATABASE"] ?? values["user"] ?? environment["PGUSER"] ?? environment["USER"]
    }

    /// Environment for a child libpq tool: the resolved parameters as `PGHOST`, `PGPASSWORD`, …
    public var childEnvironment: [String: String] {
        var environment: [String: String] = [:]
        for (keyword, value) in values {
            if let name = environmentNames[keyword] { environment[name] = value }
        }
        return environment
    }

    /// Never shows the password.
    public var description: String {
        let shown = ["host", "port", "dbname", "user"].compactMap { key in values[key].map { "\(key)=\($0)" } }
        return shown.isEmpty ? "libpq defaults and PG* variables" : shown.joined(separator: " ")
    }

    private static func libpqEnvironmentNames() -> [String: String] {
        guard let defaults = PQconndefaults() else { return [:] }
        defer { PQconninfoFree(defaults) }
        var names: [String: String] = [:]
        var option = defaults
        while let keyword = option.pointee.keyword {
            if let name = option.pointee.envvar { names[String(cString: keyword)] = String(cString: name) }
            option += 1
        }
        return names
    }
}
