import BackupCore
import BackupInterop
import Foundation
import Logging

/// The databases interrupted or finished restores leave beside the application's, found by the marks
/// `DatabaseRestorer` puts on them (a name alone is never trusted to drop a database):
/// - a restore's new database that was never swapped in (the restore was killed): every restore holds the
///   store's lease from start to end, so under cleanup's lease no restore is running and such a database is
///   abandoned;
/// - `<db>_before_restore_<time>`, kept by RESTORE_KEEP_OLD "until the next successful backup": dropped once a
///   complete backup newer than its time exists (backup-job drops them too; this catches those it could not).
/// Databases a rollback keeps for its safety backup are left to the rollback. Only looked for when the database
/// is configured (DATABASE_NAME, DATABASE_URL or PGDATABASE); a server that cannot be reached gives a warning.
struct DatabaseLeftovers {
    let configuration: RestoreConfiguration
    let logger: Logger
    let dryRun: Bool

    /// Drops (or, in a dry run, lists) them; returns their names.
    func collect(newestBackup: Date?) -> [String] {
        let environment = ProcessInfo.processInfo.environment
        guard
            configuration.database.url != nil || configuration.database.overrides["dbname"] != nil
                || environment["PGDATABASE"] != nil
        else { return [] }
        do {
            let parameters = try ConnectionParameters(configuration.database)
            guard let database = parameters.databaseName(environment: environment) else { return [] }
            let maintenance = try PostgresConnection(parameters.maintenance(besides: database))
            func marked(_ comment: String) throws -> [String] {
                let rows = try maintenance.query(
                    "SELECT datname FROM pg_database WHERE shobj_description(oid, 'pg_database') = $1 ORDER BY datname",
                    [comment])
                return (0..<rows.rowCount).compactMap { rows.value($0, 0) }
            }
            var drop = try marked(DatabaseRestorer.incomingComment(database)).map {
                ($0, "left by a restore that did not finish")
            }
            for name in try marked(DatabaseRestorer.previousComment(database)) {
                guard let kept = Self.keptTime(name), let newestBackup, newestBackup > kept else { continue }
                drop.append((name, "kept from before a restore, and a newer backup exists"))
            }
            for (name, why) in drop {
                if dryRun {
                    logger.info("Would drop the database \(name), \(why)")
                } else {
                    try maintenance.query("DROP DATABASE IF EXISTS \(SQL.identifier(name)) WITH (FORCE)")
                    logger.info("Dropped the database \(name), \(why)")
                }
            }
            return drop.map(\.0)
        } catch {
            logger.warning("Could not look for databases left by restores: \(error)")
            return []
        }
    }

    /// The time in a kept database's name, `<db>_before_restore_YYYYMMDDHHMMSS[_n]` (UTC).
    static func keptTime(_ name: String) -> Date? {
        guard let range = name.range(of: "_before_restore_", options: .backwards) else { return nil }
        let digits = Array(name[range.upperBound...].prefix(14))
        guard digits.count == 14, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
        let text = String(digits)
        func part(_ from: Int, _ count: Int) -> String { String(text.dropFirst(from).prefix(count)) }
        return BackupName.parseTimestamp(
            "\(part(0, 4))-\(part(4, 2))-\(part(6, 2))_\(part(8, 2))-\(part(10, 2))-\(part(12, 2))")
    }
}
