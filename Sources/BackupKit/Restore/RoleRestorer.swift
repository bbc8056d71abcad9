import BackupCore
import BackupInterop
import Foundation
import Logging

/// Creates the roles a backup's objects need on a server that lacks them, from the backup's `globals.sql`
/// (`pg_dumpall --roles-only`), once that file has matched the manifest. The file is parsed whole first
/// (`RoleCatalog.parse`): anything pg_dumpall would not have written refuses the restore before any statement
/// runs. What to create is decided next (`RolePlan`: only needed roles, existing roles never changed, no
/// superuser-like attribute, no predefined or existing role granted), and the statements run are built from
/// that, never copied from the file.
///
/// All the roles are created in one transaction: a failure leaves none of them. A setting, comment or
/// membership that the server refuses is reported and skipped (a savepoint each), not the whole restore.
struct RoleRestorer {
    let connection: PostgresConnection
    let logger: Logger

    /// Returns the roles created. `needed`: the roles the dump's objects name, as the backup recorded them (nil:
    /// every role in the file, for backups that did not record them).
    @discardableResult
    func restore(_ globals: [UInt8], needed: [String]?) throws -> [String] {
        let catalog = try RoleCatalog.parse(globals)
        let roles = try connection.query("SELECT rolname FROM pg_roles")
        let existing = Set((0..<roles.rowCount).compactMap { roles.value($0, 0) })
        let superuser =
            try connection.query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").value(0, 0) == "t"
        let plan = try RolePlan.make(catalog: catalog, needed: needed, existing: existing, superuser: superuser)
        for note in plan.notes { logger.warning("Roles: \(note)") }

        if !plan.creations.isEmpty {
            do {
                try connection.query("BEGIN")
                for creation in plan.creations { try connection.query(creation.create) }
                for (index, statement) in (plan.creations.flatMap(\.extras) + plan.grants).enumerated() {
                    try connection.query("SAVEPOINT role_\(index)")
                    do {
                        try connection.query(statement)
                        try connection.query("RELEASE SAVEPOINT role_\(index)")
                    } catch let error as ContingencyError {
                        try connection.query("ROLLBACK TO SAVEPOINT role_\(index)")
                        logger.warning("Roles: not restored (\(statement)): \(error.message)")
                    }
                }
                try connection.query("COMMIT")
            } catch let error as ContingencyError {
                _ = try? connection.query("ROLLBACK")
                throw ContingencyError.failed(
                    "cannot create the roles the backup's objects need (\(plan.creations.map(\.name).joined(separator: ", "))): \(error.message); none was created and nothing was restored",
                    hint:
                        "restore as a role with CREATEROLE (or a superuser), or set RESTORE_NO_OWNER=true to restore without owners"
                )
            }
            logger.info("Created roles: \(plan.creations.map(\.name).joined(separator: ", "))")
        }
        if !plan.kept.isEmpty {
            logger.info("Roles already present, left as they are: \(plan.kept.joined(separator: ", "))")
        }
        return plan.creations.map(\.name)
    }
}
