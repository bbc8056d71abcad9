import BackupCore
import BackupInterop
import Foundation
import Logging

extension BackupJob {
    /// The roles the dump names, for metadata.json's `roles` (what a restore creates on a fresh server): those
    /// the preflight found, and those named once the dump is taken, so that a grant made while the job waited
    /// for the lease or ran its dump is not missed (the dump's snapshot lies between the two). Only a role
    /// granted after the preflight and dropped before the dump ended escapes both; a restore on a fresh server
    /// then fails on that grant, naming the role. If the second query fails, the preflight's list is kept with a
    /// warning.
    func rolesNamed(_ preflight: Preflight) -> [String] {
        do {
            let connection = try PostgresConnection(preflight.connection)
            return Set(preflight.requirements.roles).union(try connection.neededRoles()).sorted()
        } catch {
            logger.warning("The roles the dump names were looked up before the dump only (\(error)); a restore on a fresh server creates those")
            return preflight.requirements.roles
        }
    }
}
